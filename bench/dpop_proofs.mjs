// node bench/dpop_proofs.mjs KEYFILE COUNT METHOD URL: COUNT DPoP proofs (RFC 9449), one per line,
// signed now with the P-256 key in KEYFILE (made if missing). wrk cannot sign, so the DPoP
// workload sends proofs made ahead of time; each carries its own jti and is good for
// tokens.dpop_max_age.
import { webcrypto as crypto } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const [keyFile, count, method, url] = process.argv.slice(2);
const b64 = (bytes) => Buffer.from(bytes).toString("base64url");
const utf8 = (text) => new TextEncoder().encode(text);
const ec = { name: "ECDSA", namedCurve: "P-256" };
if (!existsSync(keyFile)) {
  const pair = await crypto.subtle.generateKey(ec, true, ["sign"]);
  writeFileSync(keyFile, JSON.stringify(await crypto.subtle.exportKey("jwk", pair.privateKey)), { mode: 0o600 });
}
const jwk = JSON.parse(readFileSync(keyFile, "utf8"));
const key = await crypto.subtle.importKey("jwk", jwk, ec, false, ["sign"]);
const header = b64(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } }));
const iat = Math.floor(Date.now() / 1000);
const lines = [];
for (let i = 0; i < Number(count); i++) {
  const claims = b64(JSON.stringify({ jti: crypto.randomUUID(), htm: method, htu: url, iat }));
  const input = `${header}.${claims}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, utf8(input));
  lines.push(`${input}.${b64(signature)}`);
}
process.stdout.write(lines.join("\n") + "\n");
