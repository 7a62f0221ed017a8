// validate.mjs FILE — is FILE a valid OpenAPI 3.1 document?  The official
// OpenAPI 3.1 JSON schema, as bundled by @seriousme/openapi-schema-validator
// (installed here by `npm ci`: tests/sidecar/t_openapi.sh, .ci/run).
// Prints one TAP-like line per finding; exits 0 only when valid.
import { Validator } from "@seriousme/openapi-schema-validator";
import { readFileSync } from "node:fs";

const file = process.argv[2];
const doc = JSON.parse(readFileSync(file, "utf8"));
const v = new Validator();
const res = await v.validate(doc);
if (!res.valid) {
	for (const e of [].concat(res.errors || []).slice(0, 20))
		console.log("invalid: " + JSON.stringify(e));
	process.exit(1);
}
if (v.version !== "3.1") {
	console.log("invalid: validated as OpenAPI " + v.version + ", not 3.1");
	process.exit(1);
}
console.log("valid OpenAPI " + v.version);
