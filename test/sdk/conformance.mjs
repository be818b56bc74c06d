// Conformance checks of attestd against Microsoft's own MAA client,
// @azure/attestation 1.0.0, used as an application would use it: an
// AttestationClient without credential and with the SDK's default token
// validation (signature against the signers from /certs, exp, nbf).
//
// Usage: ATTESTD_URL=https://localhost:PORT NODE_EXTRA_CA_CERTS=ca.pem \
//          node conformance.mjs FIXTURE.json
// sdk_test.go writes the fixture (evidence minted by attestd's simulator and
// the claims it must give) and runs this script. One line per check; the
// exit status is non-zero when any check fails.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { AttestationClient } from "@azure/attestation";

const url = process.env.ATTESTD_URL;
const fixtureFile = process.argv[2] ?? process.env.ATTESTD_FIXTURE;
if (!url || !fixtureFile) {
  console.error("usage: ATTESTD_URL=https://host:port node conformance.mjs FIXTURE.json");
  process.exit(2);
}
const fx = JSON.parse(readFileSync(fixtureFile, "utf8"));
const bytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));

let passed = 0;
let failed = 0;

// check runs one named check and prints one line for it.
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${describe(e).replace(/\n/g, "\n     ")}`);
  }
}

// describe renders an error for the log, with what the SDK saw on the wire
// when it is a RestError. (jsrsasign throws plain strings.)
function describe(e) {
  if (e === null || typeof e !== "object") return `thrown ${typeof e}: ${String(e)}`;
  const lines = [`${e.name ?? "Error"}: ${e.message}`];
  if (e.statusCode !== undefined) lines.push(`statusCode=${e.statusCode} code=${e.code}`);
  if (e.request) lines.push(`request: ${e.request.method} ${e.request.url}`);
  if (e.response) {
    lines.push(`response: ${e.response.status} ${e.response.headers?.get?.("content-type") ?? ""}`);
    if (e.response.bodyAsText) lines.push(`body: ${e.response.bodyAsText.slice(0, 2000)}`);
  }
  if (!e.statusCode && typeof e.stack === "string") {
    lines.push(...e.stack.split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 2).map((l) => l.trim()));
  }
  return lines.join("\n");
}

// Default validation: no validationOptions anywhere.
const client = new AttestationClient(url);

// The default options spelled out, plus the issuer. The SDK returns no
// problems at all when validateToken is not true, so validateIssuer alone
// would switch every check off: the full set must be given.
const withIssuer = (expectedIssuer) => ({
  validateToken: true,
  validateExpirationTime: true,
  validateNotBeforeTime: true,
  validateIssuer: true,
  expectedIssuer,
});

let signers = [];

await check("getOpenIdMetadata: issuer and jwks_uri", async () => {
  const md = await client.getOpenIdMetadata();
  assert.equal(md.issuer, url, "issuer");
  assert.equal(md.jwks_uri, `${url}/certs`, "jwks_uri");
  assert.ok(Array.isArray(md.claims_supported), "claims_supported is an array");
  assert.ok(md.id_token_signing_alg_values_supported?.includes("RS256"), "RS256 in id_token_signing_alg_values_supported");
});

await check("getAttestationSigners: keyId and certificates", async () => {
  signers = await client.getAttestationSigners();
  assert.ok(Array.isArray(signers) && signers.length >= 1, `at least one signer, got ${signers?.length}`);
  for (const s of signers) {
    assert.equal(typeof s.keyId, "string", "keyId is a string");
    assert.ok(s.keyId.length > 0, "keyId is not empty");
    assert.ok(Array.isArray(s.certificates) && s.certificates.length >= 1, `signer ${s.keyId} has certificates`);
    for (const pem of s.certificates) {
      assert.match(pem, /^-----BEGIN CERTIFICATE-----/, "certificate is PEM");
      new X509Certificate(pem); // throws unless it parses
    }
    const leaf = new X509Certificate(s.certificates[0]);
    assert.equal(leaf.publicKey.asymmetricKeyType, "rsa", `signer ${s.keyId} key type`);
    assert.equal(leaf.subject, `CN=${url}`, `signer ${s.keyId} certificate subject`);
  }
});

// checkToken: the SDK has validated the token already (the attest call
// rejects otherwise); these checks make sure it did so against a signer from
// /certs, not against a key the token carries itself, and that the
// validation is not vacuous.
function checkToken(res, body) {
  const tok = res.token;
  assert.equal(tok.algorithm, "RS256", "alg");
  assert.equal(tok.type, "JWT", "typ");
  assert.equal(tok.keyUrl, `${url}/certs`, "jku");
  assert.ok(signers.some((s) => s.keyId === tok.keyId), `kid ${tok.keyId} is one of the signers' keyIds`);
  assert.deepEqual(tok.getTokenProblems(signers), [], "getTokenProblems with the /certs signers");
  const decoy = [{ keyId: tok.keyId, certificates: [fx.decoyCertificate] }];
  assert.deepEqual(tok.getTokenProblems(decoy), ["Attestation Token is not properly signed."],
    "a token checked against another key's certificate fails");
  assert.equal(tok.issuer, url, "token iss");
  const iat = tok.issuedAt.getTime();
  assert.equal(tok.notBefore.getTime(), iat, "nbf = iat");
  assert.equal(tok.expiresOn.getTime() - iat, fx.tokenLifetimeSeconds * 1000, "exp - iat");
  assert.equal(body["x-attestd-simulated"], true, "x-attestd-simulated");
}

const seenIds = new Set();

// checkResult compares the AttestationResult getters with the evidence.
function checkResult(res, ev, kind) {
  const r = res.body;
  const body = res.token.getBody();
  checkToken(res, body);
  const x = ev.expect;
  assert.equal(r.issuer, url, "issuer");
  assert.equal(r.version, "1.0", "version");
  assert.equal(r.verifierType, "sgx", "verifierType (x-ms-attestation-type)");
  assert.equal(r.mrEnclave, x.mrEnclave, "mrEnclave");
  assert.equal(r.mrSigner, x.mrSigner, "mrSigner");
  assert.equal(r.productId, x.productId, "productId");
  assert.equal(r.svn, x.svn, "svn");
  assert.equal(r.isDebuggable, x.isDebuggable, "isDebuggable");
  assert.ok(r.policyHash instanceof Uint8Array, "policyHash is bytes");
  assert.equal(Buffer.from(r.policyHash).toString("base64url"), fx.policyHash, "policyHash");
  assert.deepEqual(r.policyClaims, {
    "is-debuggable": x.isDebuggable,
    "sgx-mrsigner": x.mrSigner,
    "sgx-mrenclave": x.mrEnclave,
    "product-id": x.productId,
    "svn": x.svn,
    "tee": "sgx",
  }, "policyClaims (x-ms-policy) of the default policy");
  assert.equal(typeof r.uniqueId, "string", "uniqueId (jti)");
  assert.ok(r.uniqueId.length > 0 && !seenIds.has(r.uniqueId), `uniqueId ${r.uniqueId} is new`);
  seenIds.add(r.uniqueId);
  const col = r.sgxCollateral;
  assert.ok(col && typeof col === "object", "sgxCollateral present");
  for (const k of ["qeidcertshash", "qeidcrlhash", "qeidhash", "quotehash", "tcbinfocertshash", "tcbinfocrlhash", "tcbinfohash"]) {
    assert.match(String(col[k]), /^[0-9a-f]{64}$/, `sgxCollateral.${k}`);
  }
  const sent = bytes(ev.runtimeData);
  if (kind === "binary") {
    assert.ok(r.enclaveHeldData instanceof Uint8Array, "enclaveHeldData is bytes");
    assert.ok(Buffer.from(r.enclaveHeldData).equals(Buffer.from(sent)),
      `enclaveHeldData (${r.enclaveHeldData.length} bytes) equals the runtime data sent (${sent.length} bytes)`);
    assert.equal(r.runTimeClaims, undefined, "no runTimeClaims for Binary runtime data");
  } else {
    assert.deepEqual(r.runTimeClaims, JSON.parse(Buffer.from(sent).toString("utf8")), "runTimeClaims");
    assert.equal(r.enclaveHeldData, undefined, "no enclaveHeldData for JSON runtime data");
  }
}

await check("attestSgxEnclave(quote, {runTimeData})", async () => {
  const res = await client.attestSgxEnclave(bytes(fx.binary.quote), { runTimeData: bytes(fx.binary.runtimeData) });
  checkResult(res, fx.binary, "binary");
});

await check("attestSgxEnclave(quote, {runTimeJson})", async () => {
  const res = await client.attestSgxEnclave(bytes(fx.json.quote), { runTimeJson: bytes(fx.json.runtimeData) });
  checkResult(res, fx.json, "json");
});

await check("attestOpenEnclave(report, {runTimeData})", async () => {
  const res = await client.attestOpenEnclave(bytes(fx.binary.report), { runTimeData: bytes(fx.binary.runtimeData) });
  checkResult(res, fx.binary, "binary");
});

await check("attestOpenEnclave(report, {runTimeJson})", async () => {
  const res = await client.attestOpenEnclave(bytes(fx.json.report), { runTimeJson: bytes(fx.json.runtimeData) });
  checkResult(res, fx.json, "json");
});

await check("attestSgxEnclave with validateIssuer/expectedIssuer = ATTESTD_URL", async () => {
  const res = await client.attestSgxEnclave(bytes(fx.binary.quote), {
    runTimeData: bytes(fx.binary.runtimeData),
    validationOptions: withIssuer(url),
  });
  checkResult(res, fx.binary, "binary");
});

await check("attestSgxEnclave with another expectedIssuer is rejected by the SDK", async () => {
  const other = `${url}/other`;
  await assert.rejects(
    client.attestSgxEnclave(bytes(fx.binary.quote), {
      runTimeData: bytes(fx.binary.runtimeData),
      validationOptions: withIssuer(other),
    }),
    (e) => {
      assert.equal(e.message, `Found issuer: ${url}; expected issuer: ${other}`);
      return true;
    },
  );
});

await check("attestSgxEnclave with runtime data the quote does not bind: RestError 400 InvalidParameter", async () => {
  await assert.rejects(
    client.attestSgxEnclave(bytes(fx.binary.quote), { runTimeData: bytes(fx.wrongRuntimeData) }),
    (e) => {
      assert.equal(e?.name, "RestError", `error is a RestError: ${describe(e)}`);
      assert.equal(e.statusCode, 400, "statusCode");
      assert.equal(e.code, "InvalidParameter", "code");
      assert.ok(typeof e.message === "string" && e.message.length > 0, "message");
      return true;
    },
  );
});

console.log(`${passed + failed} checks, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
