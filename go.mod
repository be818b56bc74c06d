module github.com/attestd/attestd

go 1.26.8
