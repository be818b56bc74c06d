package store

import "errors"

// These errors are not part of the Store interface's contract but are
// returned (wrapped) by a backend's constructor, so that the service can
// tell an operator precisely what is wrong whichever backend it runs.

// ErrWrongKey means the store was opened with a store key that cannot open
// the data already in it: the key file or configured key was replaced, or
// the database came from another installation.
var ErrWrongKey = errors.New("store: the store key does not match the key this store's data was sealed with")

// ErrSchemaTooNew means the store's schema was migrated by a newer attestd
// than the running one, which must not write to it.
var ErrSchemaTooNew = errors.New("store: schema version is newer than this attestd supports")
