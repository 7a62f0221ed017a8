/* app.js — the /ui/ dashboard of apikeyd: plain JavaScript, no framework, no
 * build step, nothing loaded from elsewhere.
 *
 * It talks to the admin API (SPEC §5a) on its own origin, with the signed-in
 * key as an Authorization: Bearer header.  That key lives in this tab's
 * sessionStorage only (never a cookie, never lasting storage, never a URL); sign
 * out removes it.  A key created or rotated here is shown once, in a dialog,
 * and is dropped from the page (and so, once collected, from memory) when that
 * dialog closes: nothing else keeps a reference to it.
 *
 * The page is built with createElement / textContent only: the Content-Security-
 * Policy apikeyd sends forbids inline script and style and requires Trusted
 * Types, so no HTML is ever parsed from data. */
"use strict";

(() => {
	const STORE = "apikeyd.key";                     /* sessionStorage item */
	const API = new URL("../", document.baseURI);   /* /ui/ → the API's root */
	const RIGHTS = ["apikey:read", "apikey:write", "apikey:admin"];
	/* codes that mean the signed-in key itself is refused: sign out */
	const DEAD = new Set(["MISSING_KEY", "MALFORMED_KEY", "INVALID_KEY", "REVOKED", "EXPIRED",
	                      "ACCOUNT_INACTIVE"]);
	const BUCKET_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };
	const SVG = "http://www.w3.org/2000/svg";

	const state = {
		me: null,            /* /v1/whoami of the signed-in key */
		rights: { read: false, write: false, admin: false },
		owner: "",           /* admin: the owner picked ("" = every owner) */
		cursor: null,        /* next_cursor of the last page listed */
		keys: new Map(),     /* id → record (never a key) */
		owners: new Set(),
		presets: [],
		usage: null,         /* what the chart shows: {id} or {owner} */
		current: null,       /* id the open edit / rotate / revoke dialog acts on */
	};

	const $ = (sel, root = document) => root.querySelector(sel);

	/* ---- DOM helpers --------------------------------------------------------- */

	/* el("td", {class: "x", "data-id": id}, child, "text", …): attributes by
	 * setAttribute (never style or on*), children as nodes or text. */
	function el(tag, attrs, ...children) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {}))
			if (v !== undefined && v !== null && v !== false)
				e.setAttribute(k, v === true ? "" : String(v));
		for (const c of children)
			if (c !== undefined && c !== null)
				e.append(c instanceof Node ? c : String(c));
		return e;
	}

	function svg(tag, attrs, ...children) {
		const e = document.createElementNS(SVG, tag);
		for (const [k, v] of Object.entries(attrs || {}))
			e.setAttribute(k, String(v));
		for (const c of children)
			e.append(c instanceof Node ? c : String(c));
		return e;
	}

	function say(text) { $("#status").textContent = text; }

	function fmtTime(s) {
		if (!s)
			return null;
		const d = new Date(s);
		return isNaN(d) ? s : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
	}

	function timeCell(s, none) {
		const t = fmtTime(s);
		return el("td", {}, t ? el("time", { datetime: s }, t) : el("span", { class: "subtle" }, none));
	}

	/* ---- the API --------------------------------------------------------------- */

	class ApiError extends Error {
		constructor(status, body) {
			const b = body && typeof body === "object" ? body : {};
			super(typeof b.error === "string" ? b.error : `HTTP ${status}`);
			this.status = status;
			this.code = typeof b.code === "string" ? b.code : "";
			this.field = typeof b.field === "string" ? b.field : "";
		}
		/* "Bad request: … (BAD_REQUEST, field scopes)" */
		text() {
			const why = [this.code, this.field && `field “${this.field}”`].filter(Boolean).join(", ");
			return why ? `${this.message} (${why})` : this.message;
		}
	}

	async function api(method, path, body) {
		const key = sessionStorage.getItem(STORE);
		if (!key)
			throw new ApiError(401, { error: "Not signed in", code: "MISSING_KEY" });
		const init = {
			method,
			headers: { Authorization: "Bearer " + key, Accept: "application/json" },
			credentials: "omit", cache: "no-store", redirect: "error", referrerPolicy: "no-referrer",
		};
		if (body !== undefined) {
			init.headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		let res;
		try {
			res = await fetch(new URL(path, API), init);
		} catch (e) {
			throw new ApiError(0, { error: `apikeyd cannot be reached (${e.message})`, code: "NETWORK" });
		}
		let data = null;
		if ((res.headers.get("Content-Type") || "").startsWith("application/json")) {
			try {
				data = await res.json();
			} catch {
				data = null;
			}
		}
		if (!res.ok) {
			const err = new ApiError(res.status, data);
			const retry = res.headers.get("Retry-After");
			if ((res.status === 429 || res.status === 503) && retry)   /* rate limited, store busy */
				err.message += ` — try again in ${retry} s`;
			throw err;
		}
		return data;
	}

	/* An error: the signed-in key refused → sign out; otherwise shown in the
	 * dialog's (or the page's) alert, the field at fault marked and focused. */
	function fail(e, form) {
		if (!(e instanceof ApiError))
			e = new ApiError(0, { error: String(e && e.message || e), code: "" });
		if (e.status === 401 || (e.status === 403 && DEAD.has(e.code))) {
			signOut("Signed out.");
			showError(`Your key was refused: ${e.text()}. You are signed out.`);
			return;
		}
		const box = form ? $(".error", form) : $("#error");
		box.textContent = e.text();
		box.hidden = false;
		if (form && e.field) {
			const name = e.field.split(/[^A-Za-z0-9_]/)[0];
			const input = form.elements.namedItem(name);
			if (input && input.setAttribute) {
				input.setAttribute("aria-invalid", "true");
				input.focus();
			}
		}
	}

	function showError(text) {
		$("#error").textContent = text;
		$("#error").hidden = false;
	}

	function clearErrors(root) {
		const box = root ? $(".error", root) : $("#error");
		box.hidden = true;
		box.textContent = "";
		if (root)
			for (const i of root.querySelectorAll("[aria-invalid]"))
				i.removeAttribute("aria-invalid");
	}

	/* ---- sign in / out ----------------------------------------------------------- */

	async function signIn(key) {
		sessionStorage.setItem(STORE, key);
		let me;
		try {
			me = await api("GET", "v1/whoami");
		} catch (e) {
			sessionStorage.removeItem(STORE);
			showError(`That key was refused: ${e instanceof ApiError ? e.text() : e}`);
			return false;
		}
		const scopes = Array.isArray(me.scopes) ? me.scopes : [];
		/* the admin scopes are granted only by name (SPEC §5a): no wildcard here */
		const rights = { read: scopes.includes(RIGHTS[0]), write: scopes.includes(RIGHTS[1]),
		                 admin: scopes.includes(RIGHTS[2]) };
		if (!rights.read && !rights.write && !rights.admin) {
			sessionStorage.removeItem(STORE);
			showError("This key cannot manage keys: it has none of the scopes " + RIGHTS.join(", ") + ".");
			return false;
		}
		state.me = me;
		state.rights = rights;
		state.owner = "";
		showApp();
		return true;
	}

	function signOut(why) {
		sessionStorage.removeItem(STORE);
		for (const d of document.querySelectorAll("dialog[open]"))
			d.close();
		state.me = null;
		state.rights = { read: false, write: false, admin: false };
		state.keys.clear();
		state.owners.clear();
		state.presets = [];
		state.usage = null;
		state.cursor = null;
		$("#keys-body").replaceChildren();
		$("#usage-chart").replaceChildren();
		$("#usage-totals").textContent = "";
		$("#session-who").textContent = "";
		$("#session").hidden = true;
		$("#app-view").hidden = true;
		$("#signin-view").hidden = false;
		clearErrors();
		say(why || "Signed out.");
		$("#signin-key").focus();
	}

	function showApp() {
		const me = state.me, r = state.rights;
		$("#signin-view").hidden = true;
		$("#app-view").hidden = false;
		$("#session").hidden = false;
		const what = [r.admin && "admin", r.write && "write", r.read && "read"].filter(Boolean).join(", ");
		$("#session-who").textContent = `${me.owner} · ${me.name || me.hint} (${what})`;
		$("#owner-form").hidden = !r.admin;
		for (const e of document.querySelectorAll(".admin-only"))
			e.hidden = !r.admin;
		$("#create-open").hidden = !(r.write || r.admin);
		document.body.classList.toggle("single-owner", !r.admin);
		clearErrors();
		say(`Signed in as ${me.owner}.`);
		loadPresets();
		loadKeys(false);
		if (r.admin)
			showUsage(null);
		else
			showUsage({ owner: me.owner, label: `every key of ${me.owner}` });
	}

	/* ---- keys ------------------------------------------------------------------ */

	function splitScopes(text) {
		return text.split(/[\s,]+/).filter(Boolean);
	}

	function scopeChips(scopes) {
		const td = el("td");
		for (const s of scopes)
			td.append(el("span", { class: RIGHTS.includes(s) || s === "*" ? "scope power" : "scope" }, s), " ");
		return td;
	}

	function canWrite(k) {
		return state.rights.admin || (state.rights.write && k.owner === state.me.owner);
	}

	function actionButton(act, label, k) {
		return el("button", { type: "button", class: "small", "data-act": act, "data-id": k.id,
		                      "aria-label": `${label} key ${k.name || k.hint}` }, label);
	}

	function keyRow(k) {
		const tr = el("tr", { "data-key-id": k.id, "data-status": k.status });
		if (state.usage && state.usage.id === k.id)
			tr.classList.add("selected");
		const name = el("td", {}, k.name || el("span", { class: "subtle" }, "(no name)"),
		                el("div", { class: "subtle mono" }, k.id));
		if (k.rotated_to)
			name.append(el("div", { class: "subtle" }, `rotated to ${k.rotated_to}`));
		const actions = el("td", { class: "actions" }, actionButton("usage", "Usage", k));
		if (canWrite(k)) {
			if (k.status !== "revoked")
				actions.append(actionButton("edit", "Edit", k));
			if (k.status === "active")
				actions.append(actionButton("rotate", "Rotate", k));
			if (k.status !== "revoked")
				actions.append(actionButton("revoke", "Revoke", k));
		}
		tr.append(name,
		          el("td", { class: "hint-cell" }, k.hint),
		          el("td", { class: "col-owner" }, k.owner),
		          scopeChips(k.scopes || []),
		          el("td", {}, el("span", { class: `status status-${k.status}` }, k.status)),
		          timeCell(k.expires_at, "never"),
		          timeCell(k.last_used_at, "never"),
		          el("td", {}, String(k.use_count ?? 0)),
		          actions);
		return tr;
	}

	function renderKeys() {
		const body = $("#keys-body");
		body.replaceChildren(...[...state.keys.values()].map(keyRow));
		$("#keys-empty").hidden = state.keys.size > 0;
		$("#keys-more").hidden = !state.cursor;
		const whose = state.rights.admin ? (state.owner ? `of ${state.owner}` : "of every owner")
		                                 : `of ${state.me.owner}`;
		$("#keys-caption").textContent = `Keys ${whose}` +
			(state.cursor ? ` (first ${state.keys.size}; more below)` : ` (${state.keys.size})`);
		const list = $("#owner-list");
		list.replaceChildren(...[...state.owners].sort().map(o => el("option", { value: o })));
	}

	async function loadKeys(more) {
		const q = new URLSearchParams();
		if (state.rights.admin && state.owner)
			q.set("owner", state.owner);
		const status = $("#status-filter").value;
		if (status)
			q.set("status", status);
		q.set("limit", "100");
		if (more && state.cursor)
			q.set("cursor", state.cursor);
		try {
			const page = await api("GET", "v1/keys?" + q);
			if (!more)
				state.keys.clear();
			for (const k of page.keys) {
				state.keys.set(k.id, k);
				state.owners.add(k.owner);
			}
			state.cursor = page.next_cursor || null;
			renderKeys();
		} catch (e) {
			fail(e);
		}
	}

	async function loadPresets() {
		try {
			const r = await api("GET", "v1/presets");
			state.presets = Array.isArray(r.presets) ? r.presets : [];
		} catch (e) {
			state.presets = [];
		}
		const opts = state.presets.map(p => el("option", { value: p.name },
			`${p.name} (${(p.scopes || []).join(", ")})`));
		$("#create-preset").replaceChildren(...opts.map(o => o.cloneNode(true)));
		$("#edit-preset").replaceChildren(el("option", { value: "" }, "— keep the scopes above —"), ...opts);
	}

	/* ---- the new key, shown once --------------------------------------------------- */

	/* The record of a 201 (create or rotate): its key goes into the one node
	 * that shows it and is deleted from the record; closing the dialog empties
	 * that node, so the page holds no reference to the key any more. */
	function showSecret(created) {
		const code = el("code", { id: "secret-value" });
		code.textContent = created.key;
		delete created.key;
		$("#secret-box").replaceChildren(code);
		$("#secret-copied").textContent = "";
		$("#secret-dialog").showModal();
	}

	function forgetSecret() {
		const node = $("#secret-value");
		if (node)
			node.textContent = "";
		$("#secret-box").replaceChildren();
		$("#secret-copied").textContent = "";
		const sel = document.getSelection();
		if (sel)
			sel.removeAllRanges();
	}

	async function copySecret() {
		const node = $("#secret-value");
		if (!node)
			return;
		let ok = false;
		if (window.isSecureContext && navigator.clipboard) {
			try {
				await navigator.clipboard.writeText(node.textContent);
				ok = true;
			} catch {
				ok = false;
			}
		}
		if (!ok) {   /* plain http on a remote host: no Clipboard API */
			const range = document.createRange();
			range.selectNodeContents(node);
			const sel = document.getSelection();
			sel.removeAllRanges();
			sel.addRange(range);
			try {
				ok = document.execCommand("copy");
			} catch {
				ok = false;
			}
		}
		$("#secret-copied").textContent = ok ? "Copied to the clipboard."
			: "This browser does not let the page copy: the key is selected, copy it by hand.";
	}

	/* ---- dialogs ------------------------------------------------------------------- */

	function openDialog(id, form) {
		clearErrors(form);
		$(id).showModal();
	}

	function keyLabel(k) {
		return `${k.name || "(no name)"} (${k.hint})`;
	}

	function openCreate() {
		const f = $("#create-form");
		f.reset();
		if (state.rights.admin)
			f.elements.owner.value = state.owner || state.me.owner;
		syncGrant();
		openDialog("#create-dialog", f);
	}

	function syncGrant() {
		const f = $("#create-form");
		const byPreset = f.elements.grant.value === "preset";
		$(".grant-scopes", f).hidden = byPreset;
		$(".grant-preset", f).hidden = !byPreset;
	}

	/* The metadata textarea as an object, or an error naming the field. */
	function metadataOf(text) {
		if (!text.trim())
			return undefined;
		let v;
		try {
			v = JSON.parse(text);
		} catch (e) {
			throw new ApiError(400, { error: `Metadata is not JSON: ${e.message}`, code: "BAD_REQUEST",
			                          field: "metadata" });
		}
		if (!v || typeof v !== "object" || Array.isArray(v))
			throw new ApiError(400, { error: "Metadata must be a JSON object", code: "BAD_REQUEST",
			                          field: "metadata" });
		return v;
	}

	function rateOf(text) {
		return text.trim() === "" ? undefined : Number(text);
	}

	async function submitCreate(ev) {
		ev.preventDefault();
		const f = ev.currentTarget, x = f.elements;
		clearErrors(f);
		const body = {};
		try {
			if (state.rights.admin && x.owner.value.trim())
				body.owner = x.owner.value.trim();
			if (x.name.value.trim())
				body.name = x.name.value.trim();
			if (x.grant.value === "preset")
				body.preset = x.preset.value;
			else
				body.scopes = splitScopes(x.scopes.value);
			if (x.expires_at.value.trim())
				body.expires_at = x.expires_at.value.trim();
			const rate = rateOf(x.rate_limit.value);
			if (rate !== undefined)
				body.rate_limit = rate;
			const meta = metadataOf(x.metadata.value);
			if (meta !== undefined)
				body.metadata = meta;
			const created = await api("POST", "v1/keys", body);
			$("#create-dialog").close();
			say(`Created key ${keyLabel(created)} for ${created.owner}.`);
			showSecret(created);
			loadKeys(false);
		} catch (e) {
			fail(e, f);
		}
	}

	function openEdit(k) {
		const f = $("#edit-form"), x = f.elements;
		state.current = k.id;
		f.reset();
		$(".what", f).textContent = keyLabel(k);
		x.name.value = k.name || "";
		x.scopes.value = (k.scopes || []).join(", ");
		x.scopes.disabled = false;
		x.preset.value = "";
		x.rate_limit.value = String(k.rate_limit ?? "");
		x.expires_at.value = k.expires_at || "";
		x.metadata.value = JSON.stringify(k.metadata || {});
		openDialog("#edit-dialog", f);
	}

	async function submitEdit(ev) {
		ev.preventDefault();
		const f = ev.currentTarget, x = f.elements, k = state.keys.get(state.current);
		clearErrors(f);
		if (!k)
			return $("#edit-dialog").close();
		const body = {};
		try {
			if (x.name.value.trim() !== (k.name || ""))
				body.name = x.name.value.trim();
			if (x.preset.value)
				body.preset = x.preset.value;
			else if (splitScopes(x.scopes.value).join(",") !== (k.scopes || []).join(","))
				body.scopes = splitScopes(x.scopes.value);
			const rate = rateOf(x.rate_limit.value);
			if (rate !== undefined && rate !== k.rate_limit)
				body.rate_limit = rate;
			const exp = x.expires_at.value.trim();
			if (exp !== (k.expires_at || ""))
				body.expires_at = exp === "" ? null : exp;
			const meta = metadataOf(x.metadata.value) || {};
			if (JSON.stringify(meta) !== JSON.stringify(k.metadata || {}))
				body.metadata = meta;
			if (Object.keys(body).length === 0) {
				$("#edit-dialog").close();
				say("Nothing changed.");
				return;
			}
			const rec = await api("PATCH", `v1/keys/${encodeURIComponent(k.id)}`, body);
			state.keys.set(rec.id, rec);
			$("#edit-dialog").close();
			say(`Saved key ${keyLabel(rec)} (${Object.keys(body).join(", ")}).`);
			renderKeys();
		} catch (e) {
			fail(e, f);
		}
	}

	function openRotate(k) {
		const f = $("#rotate-form");
		state.current = k.id;
		f.reset();
		$(".what", f).textContent = keyLabel(k);
		openDialog("#rotate-dialog", f);
	}

	async function submitRotate(ev) {
		ev.preventDefault();
		const f = ev.currentTarget, k = state.keys.get(state.current);
		clearErrors(f);
		if (!k)
			return $("#rotate-dialog").close();
		const g = f.elements.grace.value.trim();
		const body = g === "" ? {} : { grace: /^[0-9]+$/.test(g) ? Number(g) : g };
		try {
			const created = await api("POST", `v1/keys/${encodeURIComponent(k.id)}/rotate`, body);
			$("#rotate-dialog").close();
			say(`Rotated key ${keyLabel(k)}: its successor is ${created.id}.`);
			showSecret(created);
			loadKeys(false);
		} catch (e) {
			fail(e, f);
		}
	}

	function openRevoke(k) {
		const f = $("#revoke-form");
		state.current = k.id;
		$(".what", f).textContent = keyLabel(k);
		$("#revoke-self").hidden = k.id !== state.me.id;
		openDialog("#revoke-dialog", f);
		$(".cancel", f).focus();   /* the safe choice first */
	}

	async function submitRevoke(ev) {
		ev.preventDefault();
		const f = ev.currentTarget, k = state.keys.get(state.current);
		clearErrors(f);
		if (!k)
			return $("#revoke-dialog").close();
		try {
			const rec = await api("POST", `v1/keys/${encodeURIComponent(k.id)}/revoke`);
			$("#revoke-dialog").close();
			if (rec.id === state.me.id) {
				signOut("You revoked the key you were signed in with. You are signed out.");
				return;
			}
			state.keys.set(rec.id, rec);
			say(`Revoked key ${keyLabel(rec)}.`);
			renderKeys();
		} catch (e) {
			fail(e, f);
		}
	}

	/* ---- usage chart ------------------------------------------------------------------ */

	function refusedOf(counts) {
		let n = 0;
		for (const [code, v] of Object.entries(counts || {}))
			if (code !== "VALID")
				n += v;
		return n;
	}

	async function showUsage(what) {
		state.usage = what;
		for (const tr of document.querySelectorAll("#keys-body tr"))
			tr.classList.toggle("selected", !!what && tr.dataset.keyId === what.id);
		const chart = $("#usage-chart");
		if (!what) {
			$("#usage-what").textContent = "Pick a key's “Usage” button, or an owner above.";
			chart.replaceChildren();
			$("#usage-totals").textContent = "";
			return;
		}
		const bucket = $("#usage-window").value;
		const path = what.id ? `v1/keys/${encodeURIComponent(what.id)}/usage?bucket=${bucket}`
		                     : `v1/usage?owner=${encodeURIComponent(what.owner)}&bucket=${bucket}`;
		let u;
		try {
			u = await api("GET", path);
		} catch (e) {
			fail(e);
			return;
		}
		if (state.usage !== what)   /* another choice meanwhile */
			return;
		$("#usage-what").textContent = `Requests of ${what.label}, per ${bucket}, ${fmtTime(u.from)} – ${fmtTime(u.to)}.`;
		chart.replaceChildren(drawChart(u, bucket, what.label));
		const t = u.totals || {};
		const parts = Object.entries(t).sort((a, b) => b[1] - a[1]).map(([c, v]) => `${c} ${v}`);
		$("#usage-totals").replaceChildren(
			el("span", { class: "legend-valid" }, `■ valid ${t.VALID || 0}`), "  ",
			el("span", { class: "legend-refused" }, `■ refused ${refusedOf(t)}`),
			parts.length ? `  ·  ${parts.join(", ")}` : "");
	}

	/* An inline SVG bar chart: one bar per bucket of the window (buckets
	 * without requests are absent from the answer: zero), valid below, refused
	 * stacked above, a <title> per bar. */
	function drawChart(u, bucket, label) {
		const W = 720, H = 180, L = 44, R = 8, T = 10, B = 24;
		const width = BUCKET_MS[bucket];
		const from = Date.parse(u.from), to = Date.parse(u.to);
		const first = Math.floor(from / width) * width;
		const n = Math.max(1, Math.min(1440, Math.ceil((to - first) / width)));
		const byStart = new Map();
		for (const b of u.buckets || [])
			byStart.set(Date.parse(b.start), b.counts || {});
		let max = 0;
		const bars = [];
		for (let i = 0; i < n; i++) {
			const c = byStart.get(first + i * width) || {};
			const v = c.VALID || 0, r = refusedOf(c);
			max = Math.max(max, v + r);
			bars.push({ start: first + i * width, v, r });
		}
		const total = bars.reduce((s, b) => s + b.v + b.r, 0);
		const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "usage-svg-title",
		                          "data-buckets": n, "data-total": total });
		root.append(svg("title", { id: "usage-svg-title" },
			`Requests of ${label} per ${bucket}: ${total} in all, ${bars.reduce((s, b) => s + b.r, 0)} refused`));
		const pw = W - L - R, ph = H - T - B, bw = pw / n;
		const y = v => T + ph - (max ? v / max * ph : 0);
		root.append(svg("line", { class: "axis", x1: L, y1: T + ph, x2: W - R, y2: T + ph }),
		            svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: T + ph }),
		            svg("text", { x: L - 6, y: T + ph, "text-anchor": "end" }, "0"),
		            svg("text", { x: L, y: H - 6 }, fmtTime(new Date(first).toISOString())),
		            svg("text", { x: W - R, y: H - 6, "text-anchor": "end" },
		                fmtTime(new Date(first + (n - 1) * width).toISOString())));
		if (max)
			root.append(svg("text", { x: L - 6, y: T + 9, "text-anchor": "end" }, String(max)));
		if (!total)
			root.append(svg("text", { x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle" },
			                "No requests in this window"));
		bars.forEach((b, i) => {
			if (!b.v && !b.r)
				return;
			const x = L + i * bw + bw * 0.1, w = Math.max(1, bw * 0.8);
			const g = svg("g", { class: "bucket" },
				svg("title", {}, `${fmtTime(new Date(b.start).toISOString())}: ${b.v} valid, ${b.r} refused`));
			if (b.v)
				g.append(svg("rect", { class: "bar-valid", x, width: w, y: y(b.v), height: T + ph - y(b.v) }));
			if (b.r)
				g.append(svg("rect", { class: "bar-refused", x, width: w, y: y(b.v + b.r),
				                       height: y(b.v) - y(b.v + b.r) }));
			root.append(g);
		});
		return root;
	}

	/* ---- wiring ------------------------------------------------------------------------ */

	function onKeysClick(ev) {
		const b = ev.target.closest("button[data-act]");
		if (!b)
			return;
		const k = state.keys.get(b.dataset.id);
		if (!k)
			return;
		clearErrors();
		switch (b.dataset.act) {
		case "usage": showUsage({ id: k.id, label: `key ${keyLabel(k)}` }); break;
		case "edit": openEdit(k); break;
		case "rotate": openRotate(k); break;
		case "revoke": openRevoke(k); break;
		}
	}

	function init() {
		$("#signin-form").addEventListener("submit", async ev => {
			ev.preventDefault();
			const input = $("#signin-key");
			const key = input.value.trim();
			input.value = "";
			clearErrors();
			if (key)
				await signIn(key);
		});
		$("#signout").addEventListener("click", () => signOut());
		$("#owner-form").addEventListener("submit", ev => {
			ev.preventDefault();
			state.owner = $("#owner-input").value.trim();
			state.cursor = null;
			clearErrors();
			loadKeys(false);
			showUsage(state.owner ? { owner: state.owner, label: `every key of ${state.owner}` } : null);
		});
		$("#owner-all").addEventListener("click", () => {
			$("#owner-input").value = "";
			state.owner = "";
			clearErrors();
			loadKeys(false);
			showUsage(null);
		});
		$("#refresh").addEventListener("click", () => {
			clearErrors();
			loadKeys(false);
			if (state.usage)
				showUsage(state.usage);
		});
		$("#status-filter").addEventListener("change", () => loadKeys(false));
		$("#keys-more").addEventListener("click", () => loadKeys(true));
		$("#keys-body").addEventListener("click", onKeysClick);
		$("#usage-window").addEventListener("change", () => showUsage(state.usage));
		$("#create-open").addEventListener("click", openCreate);
		for (const r of document.querySelectorAll("#create-form input[name=grant]"))
			r.addEventListener("change", syncGrant);
		$("#create-form").addEventListener("submit", submitCreate);
		$("#edit-form").addEventListener("submit", submitEdit);
		$("#edit-preset").addEventListener("change", ev => {
			$("#edit-scopes").disabled = ev.target.value !== "";
		});
		$("#rotate-form").addEventListener("submit", submitRotate);
		$("#revoke-form").addEventListener("submit", submitRevoke);
		$("#secret-form").addEventListener("submit", ev => {
			ev.preventDefault();
			forgetSecret();
			$("#secret-dialog").close();
		});
		$("#secret-copy").addEventListener("click", copySecret);
		/* Escape, or any other way the dialog closes ("close" comes a task later) */
		$("#secret-dialog").addEventListener("cancel", forgetSecret);
		$("#secret-dialog").addEventListener("close", forgetSecret);
		for (const d of document.querySelectorAll("dialog")) {
			const cancel = $(".cancel", d);
			if (cancel)
				cancel.addEventListener("click", () => d.close());
		}
		if (sessionStorage.getItem(STORE)) {   /* a reload of a signed-in tab */
			say("Signing in again…");
			signIn(sessionStorage.getItem(STORE));
		} else {
			$("#signin-view").hidden = false;
			$("#signin-key").focus();
		}
	}

	init();
})();
