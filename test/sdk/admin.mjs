// Conformance checks of attestd's policy management API against
// Microsoft's AttestationAdministrationClient (@azure/attestation 1.0.0),
// used as an operator would: a TokenCredential returning an attestd admin
// token, unsigned policies on an AAD-mode instance and signed ones on an
// isolated instance. Each policy change is then checked through an
// AttestationClient: the next attestation obeys it.
//
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node admin.mjs FIXTURE.json
// sdk_test.go starts the two attestd instances and writes the fixture.

import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { AttestationAdministrationClient, AttestationClient } from "@azure/attestation";

const fx = JSON.parse(readFileSync(process.argv[2], "utf8"));
const bytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    const detail = e && typeof e === "object"
      ? `${e.name}: ${e.message}${e.statusCode ? ` (statusCode=${e.statusCode} code=${e.code})` : ""}${e.response?.bodyAsText ? `\nbody: ${e.response.bodyAsText.slice(0, 1000)}` : ""}`
      : `thrown ${typeof e}: ${String(e)}`;
    console.log(`FAIL ${name}\n     ${detail.replace(/\n/g, "\n     ")}`);
  }
}

// credential is a TokenCredential that returns a fixed bearer token, as
// an application would wrap attestd's admin token.
const credential = (token) => ({
  getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600 * 1000 }),
});

// recorder is a pipeline policy that keeps the body of every PUT/POST to
// a policy or certificate route: what the SDK actually sent.
function recorder() {
  const sent = [];
  return {
    sent,
    policy: {
      name: "attestd-conformance-recorder",
      async sendRequest(request, next) {
        if (request.method !== "GET" && /\/(policies|certificates)/.test(request.url)) {
          sent.push({ url: request.url, body: String(request.body ?? ""), contentType: request.headers.get("content-type") });
        }
        return next(request);
      },
    },
  };
}

const sha256b64url = (s) => createHash("sha256").update(s, "utf8").digest("base64url");
const sameCert = (pemA, pemB) => new X509Certificate(pemA).raw.equals(new X509Certificate(pemB).raw);

function adminClient(url, token) {
  const rec = recorder();
  const client = new AttestationAdministrationClient(url, credential(token), {
    additionalPolicies: [{ policy: rec.policy, position: "perCall" }],
  });
  return { client, rec };
}

async function expectRestError(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e?.name, "RestError", `a RestError, got ${e?.name}: ${e?.message}`);
    assert.equal(e.statusCode, status, "statusCode");
    if (code) assert.equal(e.code, code, "code");
    return true;
  });
}

// --- AAD mode ---------------------------------------------------------
{
  const url = fx.aad.url;
  const { client, rec } = adminClient(url, fx.aad.adminToken);
  const attest = new AttestationClient(url);
  const quote = bytes(fx.quote);

  await check("AAD getPolicy(SgxEnclave): MAA's default policy text", async () => {
    const res = await client.getPolicy("SgxEnclave");
    assert.equal(res.body, fx.defaultSgxPolicy);
    assert.equal(res.token.issuer, url);
  });

  await check("AAD setPolicy unsigned (deny-all): Updated, hash of what was sent", async () => {
    const res = await client.setPolicy("SgxEnclave", fx.denyPolicy);
    assert.equal(res.body.policyResolution, "Updated");
    const sent = rec.sent.at(-1);
    assert.match(sent.body, /^eyJhbGciOiJub25lIn0\./, "an unsigned JWS was sent");
    assert.equal(sent.contentType, "text/plain", "content type");
    assert.equal(Buffer.from(res.body.policyTokenHash).toString("base64url"), sha256b64url(sent.body), "policyTokenHash");
    assert.equal(res.body.policySigner, undefined, "no policySigner for an unsigned policy");
  });

  await check("AAD getPolicy returns the policy just set", async () => {
    assert.equal((await client.getPolicy("SgxEnclave")).body, fx.denyPolicy);
  });

  await check("AAD attestSgxEnclave under deny-all: RestError 400 PolicyEvaluationError", async () => {
    await expectRestError(attest.attestSgxEnclave(quote), 400, "PolicyEvaluationError");
  });

  await check("AAD setPolicy issuing a claim: the claim appears in the next token", async () => {
    const res = await client.setPolicy("SgxEnclave", fx.issuePolicy);
    assert.equal(res.body.policyResolution, "Updated");
    const att = await attest.attestSgxEnclave(quote);
    const body = att.token.getBody();
    assert.equal(body["SecurityLevelValue"], 100, "top-level issued claim");
    assert.deepEqual(att.body.policyClaims, { SecurityLevelValue: 100, "enclave-signer": fx.mrSigner }, "x-ms-policy");
    assert.equal(Buffer.from(att.body.policyHash).toString("base64url"), fx.issuePolicyHash, "policyHash");
  });

  await check("AAD setPolicy with a syntax error: RestError 400 PolicyParsingError naming line and column", async () => {
    await assert.rejects(client.setPolicy("SgxEnclave", fx.badPolicy), (e) => {
      assert.equal(e.statusCode, 400);
      assert.equal(e.code, "PolicyParsingError");
      assert.match(e.message, /line \d+, column \d+/);
      return true;
    });
  });

  await check("AAD resetPolicy: Removed, default claims again", async () => {
    const res = await client.resetPolicy("SgxEnclave");
    assert.equal(res.body.policyResolution, "Removed");
    assert.equal(rec.sent.at(-1).body, "eyJhbGciOiJub25lIn0..", "the SDK's unsigned reset body");
    const att = await attest.attestSgxEnclave(quote);
    assert.equal(att.body.policyClaims["sgx-mrsigner"], fx.mrSigner, "default policy claims");
    assert.equal((await client.getPolicy("SgxEnclave")).body, fx.defaultSgxPolicy);
  });

  await check("AAD getPolicyManagementCertificates: none", async () => {
    const res = await client.getPolicyManagementCertificates();
    assert.deepEqual(res.body, []);
  });

  await check("AAD with a wrong admin token: RestError 401", async () => {
    const bad = new AttestationAdministrationClient(url, credential("attestd_wrongwrongwrongwrongwrongwrongwrongwro"));
    await expectRestError(bad.getPolicy("SgxEnclave"), 401);
  });

  await check("AAD with a reader token: getPolicy works, setPolicy is 403", async () => {
    const reader = new AttestationAdministrationClient(url, credential(fx.aad.readerToken));
    await reader.getPolicy("SgxEnclave");
    await expectRestError(reader.setPolicy("SgxEnclave", fx.denyPolicy), 403);
  });
}

// --- Isolated mode ----------------------------------------------------
{
  const url = fx.isolated.url;
  const { client, rec } = adminClient(url, fx.isolated.adminToken);
  const attest = new AttestationClient(url);
  const quote = bytes(fx.quote);
  const key = fx.isolated.signerKey;
  const cert = fx.isolated.signerCert;

  await check("isolated getPolicyManagementCertificates: the configured signer", async () => {
    const res = await client.getPolicyManagementCertificates();
    assert.equal(res.body.length, 1);
    assert.ok(sameCert(res.body[0].certificates[0], cert), "the signer's certificate");
  });

  await check("isolated setPolicy unsigned: RestError 400 InvalidOperation", async () => {
    await expectRestError(client.setPolicy("SgxEnclave", fx.denyPolicy), 400, "InvalidOperation");
  });

  await check("isolated setPolicy signed: Updated, policySigner, hash of what was sent", async () => {
    const res = await client.setPolicy("SgxEnclave", fx.denyPolicy, { privateKey: key, certificate: cert });
    assert.equal(res.body.policyResolution, "Updated");
    const sent = rec.sent.at(-1).body;
    assert.match(sent, /^eyJhbGciOiJSUzI1NiIs/, "an RS256 JWS was sent");
    assert.equal(Buffer.from(res.body.policyTokenHash).toString("base64url"), sha256b64url(sent), "policyTokenHash");
    assert.ok(res.body.policySigner && sameCert(res.body.policySigner.certificates[0], cert), "policySigner");
    await expectRestError(attest.attestSgxEnclave(quote), 400, "PolicyEvaluationError");
  });

  await check("isolated setPolicy signed by an unregistered key: RestError 400", async () => {
    await expectRestError(client.setPolicy("SgxEnclave", fx.issuePolicy, { privateKey: fx.isolated.newcomerKey, certificate: fx.isolated.newcomerCert }), 400);
  });

  await check("isolated resetPolicy signed: Removed, attestation permitted again", async () => {
    const res = await client.resetPolicy("SgxEnclave", { privateKey: key, certificate: cert });
    assert.equal(res.body.policyResolution, "Removed");
    const att = await attest.attestSgxEnclave(quote);
    assert.equal(att.body.mrSigner, fx.mrSigner);
  });

  await check("isolated addPolicyManagementCertificate: IsPresent, thumbprint", async () => {
    const res = await client.addPolicyManagementCertificate(fx.isolated.newcomerCert, key, cert);
    assert.equal(res.body.certificateResolution, "IsPresent");
    assert.equal(res.body.certificateThumbprint, fx.isolated.newcomerThumbprint);
    assert.equal(rec.sent.at(-1).contentType, "application/json", "content type");
    assert.match(rec.sent.at(-1).body, /^"eyJ/, "the JWS went as a JSON string literal");
    const list = await client.getPolicyManagementCertificates();
    assert.equal(list.body.length, 2);
  });

  await check("isolated: the added certificate can sign a policy", async () => {
    const res = await client.setPolicy("SgxEnclave", fx.issuePolicy, { privateKey: fx.isolated.newcomerKey, certificate: fx.isolated.newcomerCert });
    assert.equal(res.body.policyResolution, "Updated");
    const att = await attest.attestSgxEnclave(quote);
    assert.equal(att.token.getBody()["SecurityLevelValue"], 100);
  });

  await check("isolated removePolicyManagementCertificate: IsAbsent", async () => {
    const res = await client.removePolicyManagementCertificate(fx.isolated.newcomerCert, key, cert);
    assert.equal(res.body.certificateResolution, "IsAbsent");
    assert.equal(res.body.certificateThumbprint, fx.isolated.newcomerThumbprint);
    assert.equal((await client.getPolicyManagementCertificates()).body.length, 1);
  });

  await check("isolated removing the last certificate: RestError 400 InvalidOperation", async () => {
    await expectRestError(client.removePolicyManagementCertificate(cert, key, cert), 400, "InvalidOperation");
  });
}

console.log(`${passed + failed} checks, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
