// dashboard.mjs — drives apikeyd's /ui/ dashboard in Debian's headless
// Chromium (playwright-core over the DevTools protocol; it never downloads a
// browser) against a real apikeyd on loopback with a real store, set up by
// t_dashboard.sh.  Prints TAP-like lines ("ok - …", "not ok - …", "# …") that
// t_dashboard.sh numbers.
//
// Usage: node dashboard.mjs SETUP.json
//   SETUP.json: {url, chromium, profile, shots, alice:{key,id}, admin:{key},
//                bob:{id}}   (test keys only, written by t_dashboard.sh)
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";

const S = JSON.parse(readFileSync(process.argv[2], "utf8"));
const UI = S.url + "/ui/";
const STORE = "apikeyd.key";
const ALL_KEYS = [S.alice.key, S.admin.key];   // grows with every key the page shows
let failed = 0;

function ok(cond, desc, diag) {
	console.log(`${cond ? "ok" : "not ok"} - ${desc}`);
	if (!cond) {
		failed++;
		if (Array.isArray(diag))   /* a list of findings: each once, the first few */
			diag = [...new Set(diag.map(d => typeof d === "string" ? d : JSON.stringify(d)))]
				.slice(0, 5).map(d => d.length > 300 ? d.slice(0, 300) + "…" : d).join("\n");
		if (diag !== undefined)
			for (const l of String(typeof diag === "string" ? diag : JSON.stringify(diag)).split("\n"))
				console.log(`#   ${l}`);
	}
	return cond;
}
const note = s => console.log(`# ${s}`);

/* Bounded poll: fn() until truthy, at most ms. */
async function until(fn, ms = 10000, step = 100) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await fn().catch(() => undefined);
		if (v || Date.now() > end)
			return v;
		await new Promise(r => setTimeout(r, step));
	}
}

/* /auth as a proxy would call it: status and the code / owner headers. */
async function auth(key) {
	const r = await fetch(S.url + "/auth", { headers: { Authorization: "Bearer " + key } });
	return { status: r.status, code: r.headers.get("x-apikey-code"), owner: r.headers.get("x-apikey-owner") };
}

async function apiGet(key, path) {
	const r = await fetch(S.url + path, { headers: { Authorization: "Bearer " + key } });
	return { status: r.status, body: await r.json().catch(() => null) };
}

mkdirSync(S.shots, { recursive: true });
const ctx = await chromium.launchPersistentContext(S.profile, {
	executablePath: S.chromium,
	headless: true,
	args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	       "--disable-background-networking", "--disable-component-update", "--disable-sync"],
	viewport: { width: 1180, height: 760 },
	acceptDownloads: false,
});
ctx.setDefaultTimeout(10000);
await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: S.url });

// What every page of the test records: console errors, page errors, CSP
// violations (the DOM event and Chromium's console line), the headers of
// every /ui/ answer, and every request (no key in a URL, no cookie).
const seen = { console: [], pageErrors: [], csp: [], uiAnswers: [], requests: [], expected: [] };
await ctx.addInitScript(() => {
	document.addEventListener("securitypolicyviolation", e => {
		console.error(`CSP-VIOLATION ${e.violatedDirective} blocked=${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
	});
});

function watch(page, who) {
	page.on("console", m => {
		const t = m.text();
		if (/CSP-VIOLATION|Content.Security.Policy|Trusted Type/i.test(t))
			seen.csp.push(`${who}: ${t}`);
		if (m.type() !== "error")
			return;
		// Chromium logs every 4xx of a fetch as a console error: allowed only
		// for the answers a step of this test provokes on purpose.
		const net = /^Failed to load resource: the server responded with a status of (\d+)/.exec(t);
		const url = m.location() && m.location().url || "";
		if (net && seen.expected.some(e => e.status === +net[1] && url.includes(e.path)))
			return;
		seen.console.push(`${who}: ${t} (${url})`);
	});
	page.on("pageerror", e => seen.pageErrors.push(`${who}: ${e.message}`));
	page.on("request", r => seen.requests.push({ url: r.url(), headers: r.headers(), method: r.method() }));
	page.on("response", r => {
		if (new URL(r.url()).pathname.startsWith("/ui"))
			seen.uiAnswers.push({ url: r.url(), status: r.status(), headers: r.headers() });
	});
}

/* Run step with the given 4xx answers allowed in the console. */
async function expecting(list, step) {
	seen.expected.push(...list);
	try {
		return await step();
	} finally {
		seen.expected = seen.expected.filter(e => !list.includes(e));
	}
}

/* Does the page's JavaScript heap still hold text?  A heap snapshot after a
 * full collection: every string the page's isolate keeps is in it. */
async function heapHolds(page, text) {
	const cdp = await ctx.newCDPSession(page);
	let snap = "";
	cdp.on("HeapProfiler.addHeapSnapshotChunk", p => { snap += p.chunk; });
	await cdp.send("HeapProfiler.enable");
	for (let i = 0; i < 3; i++)
		await cdp.send("HeapProfiler.collectGarbage");
	await cdp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
	await cdp.send("HeapProfiler.disable");
	await cdp.detach();
	return { holds: snap.includes(text), size: snap.length };
}

async function shot(page, name) {
	await page.screenshot({ path: `${S.shots}/${name}.png`, fullPage: true });
}

const row = (page, id) => page.locator(`#keys-body tr[data-key-id="${id}"]`);
const rowByName = (page, name) => page.locator("#keys-body tr", { hasText: name }).first();

async function signIn(page, key) {
	await page.fill("#signin-key", key);
	await page.click("#signin-form button[type=submit]");
	await page.waitForSelector("#app-view:not([hidden])");
	await page.waitForSelector("#keys-body tr");
}

async function signOut(page) {
	await page.click("#signout");
	await page.waitForSelector("#signin-view:not([hidden])");
}

/* The secret dialog: read the key it shows (once), check Copy, close it, and
 * check it is gone from the DOM and from the page's memory. */
async function takeSecret(page, label, how = "button") {
	await page.waitForSelector("#secret-dialog[open]");
	const key = (await page.textContent("#secret-value")).trim();
	ALL_KEYS.push(key);
	ok(/^ak_[0-9A-Za-z]{30,}$/.test(key), `${label}: the new key is shown once, in the dialog`, key.slice(0, 3));
	await page.click("#secret-copy");
	await until(async () => (await page.textContent("#secret-copied")).includes("Copied"));
	const clip = await page.evaluate(() => navigator.clipboard.readText());
	ok(clip === key, `${label}: Copy puts exactly the key on the clipboard`);
	await page.evaluate(() => navigator.clipboard.writeText(""));
	if (how === "escape")
		await page.keyboard.press("Escape");
	else
		await page.click("#secret-form button[type=submit]");
	await page.waitForSelector("#secret-dialog:not([open])", { state: "attached" });
	await page.waitForSelector("#secret-value", { state: "detached", timeout: 3000 }).catch(() => {});
	const html = await page.content();
	const text = await page.evaluate(() => document.body.innerText);
	const left = await page.locator("#secret-value").count();
	ok(!html.includes(key) && !text.includes(key) && left === 0, `${label}: dismissed, the key is gone from the DOM`,
	   { html: html.includes(key), text: text.includes(key), node: left,
	     near: html.includes(key) ? html.slice(Math.max(0, html.indexOf(key) - 200), html.indexOf(key)) : "" });
	const h = await heapHolds(page, key);
	ok(!h.holds, `${label}: dismissed, the key is gone from the page's memory (heap snapshot, ${h.size} bytes)`);
	return key;
}

/* What the whole run saw, checked even when a step stopped it. */
function summary() {
	const csp = seen.uiAnswers.map(x => x.headers["content-security-policy"] || "");
	ok(seen.uiAnswers.length >= 4, "the page and its files came from /ui/", seen.uiAnswers.map(x => x.url));
	const bad = seen.uiAnswers.filter(x => {
		const c = x.headers["content-security-policy"] || "";
		return !/(^|; )default-src 'none'/.test(c) || !/script-src 'self'(;|$)/.test(c) || /unsafe/.test(c) ||
		       !/frame-ancestors 'none'/.test(c) || x.headers["x-frame-options"] !== "DENY" ||
		       x.headers["referrer-policy"] !== "no-referrer" || x.headers["cache-control"] !== "no-store" ||
		       x.headers["x-content-type-options"] !== "nosniff";
	});
	ok(bad.length === 0 && csp.every(Boolean),
	   "every /ui/ answer: strict CSP, X-Frame-Options DENY, no-referrer, no-store, nosniff",
	   [...new Set(bad.map(x => new URL(x.url).pathname))].join(" ") + ": " + JSON.stringify(bad[0] && bad[0].headers));
	const types = Object.fromEntries(seen.uiAnswers.map(x => [new URL(x.url).pathname, x.headers["content-type"]]));
	ok(types["/ui/app.js"] === "text/javascript; charset=utf-8" && types["/ui/app.css"] === "text/css; charset=utf-8",
	   "script and style sheet have their own content types", types);
	const foreign = seen.requests.filter(r => !r.url.startsWith(S.url + "/"));
	ok(foreign.length === 0, "no request left apikeyd's origin", foreign.map(r => r.url));
	const leaky = seen.requests.filter(r => ALL_KEYS.some(k => decodeURIComponent(r.url).includes(k)) ||
	                                       r.headers.cookie);
	ok(leaky.length === 0, "no request carried a key in its URL, none a cookie", leaky.map(r => r.url.slice(0, 80)));
	const calls = seen.requests.filter(r => new URL(r.url).pathname.startsWith("/v1/"));
	ok(calls.length > 0 && calls.every(r => /^Bearer ak_/.test(r.headers.authorization || "")),
	   `every API call (${calls.length}) sent its key as Authorization: Bearer`,
	   calls.filter(r => !r.headers.authorization).map(r => r.url));
	ok(seen.csp.length === 0, "no Content-Security-Policy violation", seen.csp);
	ok(seen.console.length === 0, "no console error", seen.console);
	ok(seen.pageErrors.length === 0, "no uncaught page error", seen.pageErrors);
}

try {
	/* ---- alice: sign in, create, use, revoke, sign out ---------------------------------- */
	const page = await ctx.newPage();
	watch(page, "alice");
	const res = await page.goto(UI);
	const h = res.headers();
	ok(res.status() === 200 && /^text\/html; charset=utf-8$/i.test(h["content-type"] || ""),
	   "GET /ui/ is the page, text/html; charset=utf-8", [res.status(), h["content-type"]]);
	await page.waitForSelector("#signin-view:not([hidden])");
	ok(await page.evaluate(() => document.activeElement && document.activeElement.id === "signin-key"),
	   "the key field has the focus on arrival");

	// every form control has a label; every action is a real button
	const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea")]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && e.type !== "hidden")
		.map(e => e.id || e.name || e.outerHTML.slice(0, 60)));
	ok(unlabelled.length === 0, "every input, select and textarea has a label", unlabelled);

	// a refused key: readable error, nothing kept
	await expecting([{ status: 401, path: "/v1/whoami" }], async () => {
		await page.fill("#signin-key", "ak_notAKeyAtAllnotAKeyAtAllnotAK");
		await page.click("#signin-form button[type=submit]");
		await page.waitForSelector("#error:not([hidden])");
	});
	const err = await page.textContent("#error");
	ok(/refused/.test(err) && /INVALID_KEY|MALFORMED_KEY/.test(err), "a refused key: the error says why", err);
	ok(await page.evaluate(() => sessionStorage.length === 0 && localStorage.length === 0),
	   "a refused key: nothing is stored");

	// sign in with the keyboard only: type, Enter
	await page.focus("#signin-key");
	await page.keyboard.type(S.alice.key);
	await page.keyboard.press("Enter");
	await page.waitForSelector("#app-view:not([hidden])");
	await page.waitForSelector(`#keys-body tr[data-key-id="${S.alice.id}"]`);
	ok(true, "signed in with the keyboard (type the key, Enter): alice's own key is listed");
	const stored = await page.evaluate(k => ({
		session: sessionStorage.getItem(k), n: sessionStorage.length, local: localStorage.length,
		cookie: document.cookie,
	}), STORE);
	ok(stored.session === S.alice.key && stored.n === 1, "the key is kept in sessionStorage (one item)");
	ok(stored.local === 0 && stored.cookie === "" && (await ctx.cookies()).length === 0,
	   "nothing in localStorage, no cookie", stored);
	ok(await page.locator("#signin-key").inputValue() === "", "the sign-in field is emptied");
	ok(await page.locator("#owner-form").isHidden(), "alice (no apikey:admin): no owner picker");
	ok(await row(page, S.bob.id).count() === 0, "alice does not see bob's keys");

	// another tab of the same browser does not share the sign-in
	const tab = await ctx.newPage();
	watch(tab, "tab2");
	await tab.goto(UI);
	await tab.waitForSelector("#signin-view:not([hidden])");
	ok(await tab.evaluate(() => sessionStorage.length) === 0, "a second tab is signed out (per-tab storage)");
	await tab.close();

	// create with scopes; the key shown once
	await page.click("#create-open");
	await page.waitForSelector("#create-dialog[open]");
	ok(await page.locator("#create-owner").isHidden(), "alice's create form has no owner field");
	await page.fill("#create-name", "ci-deploy");
	await page.fill("#create-scopes", "docs:read");
	await page.click("#create-form button[type=submit]");
	const k1 = await takeSecret(page, "create");
	await page.waitForSelector("#keys-body tr:has-text('ci-deploy')");
	const r1 = rowByName(page, "ci-deploy");
	const id1 = await r1.getAttribute("data-key-id");
	ok(/^key_[0-9A-Za-z]{16}$/.test(id1 || "") && (await r1.textContent()).includes("active") &&
	   (await r1.textContent()).includes("docs:read") && (await r1.textContent()).includes(k1.slice(0, 7)),
	   "the new key is listed: name, hint, scope, active", await r1.textContent());
	let a = await auth(k1);
	ok(a.status === 200 && a.owner === "alice", "the new key passes /auth as alice's", a);

	// its usage, drawn from the flushed counts (flush: every second)
	await r1.locator("button[data-act=usage]").click();
	const total = await until(async () => {
		await page.click("#refresh");
		await page.waitForTimeout(300);
		const n = await page.getAttribute("#usage-chart svg", "data-total");
		return n && +n >= 1 ? +n : undefined;
	}, 15000, 500);
	ok(total >= 1, "the usage chart of the key shows its request (inline SVG)", total);
	ok(await page.locator("#usage-chart svg rect.bar-valid").count() >= 1, "the chart has a bar for it");
	await shot(page, "dashboard-usage");

	// an error of the API, shown readably with its field
	await page.click("#create-open");
	await page.fill("#create-name", "too-much");
	await page.fill("#create-scopes", "billing:write");
	await expecting([{ status: 403, path: "/v1/keys" }], async () => {
		await page.click("#create-form button[type=submit]");
		await page.waitForSelector("#create-dialog .error:not([hidden])");
	});
	const cerr = await page.textContent("#create-dialog .error");
	ok(/FORBIDDEN/.test(cerr) && /scopes/.test(cerr), "a create beyond alice's scopes: the API's error, readable", cerr);
	ok(await page.getAttribute("#create-scopes", "aria-invalid") === "true", "… and the field at fault is marked");
	await page.keyboard.press("Escape");
	await page.waitForSelector("#create-dialog:not([open])", { state: "attached" });

	// revoke, with confirmation
	await r1.locator("button[data-act=revoke]").click();
	await page.waitForSelector("#revoke-dialog[open]");
	ok((await page.textContent("#revoke-h")).includes("ci-deploy"), "revoke asks to confirm, naming the key");
	await page.click("#revoke-form .cancel");
	ok((await auth(k1)).status === 200, "cancel revokes nothing");
	await r1.locator("button[data-act=revoke]").click();
	await page.click("#revoke-form button[type=submit]");
	await until(async () => (await row(page, id1).getAttribute("data-status")) === "revoked");
	ok(await row(page, id1).getAttribute("data-status") === "revoked", "revoked: the list says so");
	a = await auth(k1);
	ok(a.status === 401 && a.code === "REVOKED", "revoked from the page: /auth refuses the key", a);
	await shot(page, "dashboard-alice");

	/* ---- alice: edit and rotate ------------------------------------------------------------ */
	await page.click("#create-open");
	await page.fill("#create-name", "editme");
	await page.fill("#create-scopes", "docs:read");
	await page.click("#create-form button[type=submit]");
	const k2 = await takeSecret(page, "create (edit case)");
	await page.waitForSelector("#keys-body tr:has-text('editme')");
	const id2 = await rowByName(page, "editme").getAttribute("data-key-id");
	await row(page, id2).locator("button[data-act=edit]").click();
	await page.waitForSelector("#edit-dialog[open]");
	await page.fill("#edit-name", "edited");
	await page.fill("#edit-scopes", "docs:read, docs:write");
	await page.fill("#edit-rate", "120");
	await page.fill("#edit-expires", "30d");
	await page.fill("#edit-metadata", '{"team":"web"}');
	await shot(page, "dashboard-edit");
	await page.click("#edit-form button[type=submit]");
	await page.waitForSelector("#edit-dialog:not([open])", { state: "attached" });
	await until(async () => (await row(page, id2).textContent()).includes("edited"));
	const rec = (await apiGet(S.alice.key, `/v1/keys/${id2}`)).body || {};
	ok(rec.name === "edited" && rec.rate_limit === 120 && rec.metadata && rec.metadata.team === "web" &&
	   rec.expires_at && (rec.scopes || []).join(",") === "docs:read,docs:write",
	   "edit: name, scopes, rate limit, expiry and metadata are stored", rec);
	ok((await row(page, id2).textContent()).includes("docs:write"), "edit: the list shows the new scopes");

	await row(page, id2).locator("button[data-act=rotate]").click();
	await page.waitForSelector("#rotate-dialog[open]");
	await page.fill("#rotate-grace", "1h");
	await page.click("#rotate-form button[type=submit]");
	const k3 = await takeSecret(page, "rotate (dismissed with Escape)", "escape");
	ok(k3 !== k2, "rotate: a new key");
	await until(async () => (await row(page, id2).getAttribute("data-status")) === "rotating");
	ok(await row(page, id2).getAttribute("data-status") === "rotating", "rotate: the old key is listed as rotating");
	a = await auth(k3);
	const b = await auth(k2);
	ok(a.status === 200 && b.status === 200, "rotate: the successor passes /auth, the old key too while in grace",
	   [a, b]);
	const succ = (await apiGet(S.alice.key, `/v1/keys/${id2}`)).body || {};
	ok(succ.rotated_to && (await row(page, succ.rotated_to).count()) === 1 &&
	   (await row(page, succ.rotated_to).getAttribute("data-status")) === "active",
	   "rotate: the successor is listed, active", succ.rotated_to);

	// the successor's use, valid and refused, per minute: both kinds drawn
	for (let i = 0; i < 12; i++)
		await auth(k3);
	for (let i = 0; i < 4; i++)
		await fetch(S.url + "/auth?scope=billing:write", { headers: { Authorization: "Bearer " + k3 } });
	await page.selectOption("#usage-window", "minute");
	await row(page, succ.rotated_to).locator("button[data-act=usage]").click();
	const drawn = await until(async () => {
		await page.click("#refresh");
		await page.waitForTimeout(300);
		return (await page.getAttribute("#usage-chart svg", "data-total")) === "17" &&
		       (await page.locator("#usage-chart rect.bar-refused").count()) >= 1;
	}, 15000, 500);
	ok(drawn, "the chart counts valid and refused requests apart (13 valid, 4 refused)",
	   [await page.getAttribute("#usage-chart svg", "data-total"), await page.textContent("#usage-totals")]);
	ok(/INSUFFICIENT_SCOPE 4/.test(await page.textContent("#usage-totals")), "the totals name the refusal's code");
	await shot(page, "dashboard-overview");

	// sign out: the key leaves the tab
	await signOut(page);
	const after = await page.evaluate(k => ({ item: sessionStorage.getItem(k), n: sessionStorage.length,
	                                           local: localStorage.length }), STORE);
	ok(after.item === null && after.n === 0 && after.local === 0, "signed out: sessionStorage is empty", after);
	ok(await page.locator("#keys-body tr").count() === 0, "signed out: no key record left on the page");
	await page.reload();
	await page.waitForSelector("#signin-view:not([hidden])");
	ok(true, "signed out: a reload asks for a key again");

	/* ---- the admin picks an owner ------------------------------------------------------------ */
	const adm = await ctx.newPage();
	watch(adm, "admin");
	await adm.goto(UI);
	await signIn(adm, S.admin.key);
	ok(await adm.locator("#owner-form").isVisible(), "apikey:admin: the owner picker is shown");
	await until(async () => (await row(adm, S.bob.id).count()) === 1);
	ok(await row(adm, S.bob.id).count() === 1 && await row(adm, S.alice.id).count() === 1,
	   "apikey:admin: every owner's keys are listed");
	await adm.fill("#owner-input", "bob");
	await adm.click("#owner-form button[type=submit]");
	await until(async () => (await row(adm, S.alice.id).count()) === 0);
	ok(await row(adm, S.alice.id).count() === 0 && await row(adm, S.bob.id).count() === 1,
	   "picking owner bob lists bob's keys only");
	await adm.click("#create-open");
	ok(await adm.locator("#create-owner").inputValue() === "bob", "the create form's owner is the one picked");
	await adm.fill("#create-name", "bob-laptop");
	await adm.check("#create-by-preset");
	await adm.selectOption("#create-preset", "docs-reader");
	await adm.click("#create-form button[type=submit]");
	const k4 = await takeSecret(adm, "admin create (preset)");
	a = await auth(k4);
	ok(a.status === 200 && a.owner === "bob", "the admin's key for bob passes /auth as bob's", a);
	await adm.waitForSelector("#keys-body tr:has-text('bob-laptop')");
	ok((await rowByName(adm, "bob-laptop").textContent()).includes("docs:read"), "created from the preset's scopes");
	await shot(adm, "dashboard-admin");
	await signOut(adm);

} catch (e) {
	ok(false, `the test ran to its end`, e.stack || String(e));
	note(`console: ${JSON.stringify(seen.console)} csp: ${JSON.stringify(seen.csp)}`);
} finally {
	summary();
	await ctx.close();
}
process.exit(failed ? 1 : 0);
