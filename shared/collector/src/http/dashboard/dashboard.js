// collector admin dashboard. Vanilla JS, no dependencies. Every figure comes from the API with
// the admin's bearer token (sessionStorage of this tab only). Data is user-typed: it goes into
// the page as text (textContent, createElement), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "collector-admin-token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LABELS = {
    total_examples: "records",
    successful: "successful records",
    with_feedback: "records with feedback",
    quality_examples: "quality examples",
  };
  // The same, for one missing ("needs 1 more record").
  const LABEL_ONE = {
    total_examples: "record",
    successful: "successful record",
    with_feedback: "record with feedback",
    quality_examples: "quality example",
  };

  const $ = (id) => document.getElementById(id);
  const state = { platforms: [], exportsCursor: null, userCursor: null, userId: null };

  // -- tokens and calls ------------------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /// What to tell the admin about a failed call.
  function explain(status, code, message) {
    if (status === 401) return "The token was refused (401): it is wrong, expired or signed with another secret. Paste a valid admin token.";
    if (status === 403) return "The token is valid but is not an admin's (403): this needs a token of the admin group.";
    if (status === 0) return "The API could not be reached: " + message;
    return "The API answered " + status + (code ? " " + code : "") + (message ? ": " + message : "");
  }

  async function failure(resp) {
    let code = "";
    let message = "";
    try {
      const body = await resp.json();
      if (body && body.error) {
        code = String(body.error.code || "");
        message = String(body.error.message || "");
      }
    } catch (_) {
      // not our error body
    }
    return new ApiFailure(resp.status, code, explain(resp.status, code, message));
  }

  /// A call to the API with the token; the Response when it is 2xx, else an ApiFailure.
  async function call(method, path, body, init) {
    const headers = { Authorization: "Bearer " + token(), Accept: "application/json" };
    const opts = Object.assign({ method: method, headers: headers, cache: "no-store" }, init || {});
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new ApiFailure(0, "", explain(0, "", String(e && e.message ? e.message : e)));
    }
    if (resp.type === "opaqueredirect" || (resp.status >= 200 && resp.status < 300)) return resp;
    throw await failure(resp);
  }

  async function getJson(path) {
    const resp = await call("GET", path);
    return resp.json();
  }

  // -- formatting --------------------------------------------------------------------------------

  function formatInt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function formatBytes(n) {
    n = Number(n);
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function formatUsd(n) {
    n = Number(n);
    if (n === 0) return "$0.00";
    if (Math.abs(n) < 1) return "$" + String(Number(n.toPrecision(3)));
    return "$" + n.toFixed(2);
  }

  /// An RFC 3339 time, shorter: "2026-11-30 04:37:06Z" (the full value in the cell's title).
  function formatTime(t) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?$/.exec(String(t || ""));
    return m ? m[1] + " " + m[2] + (m[3] || "") : String(t || "-");
  }

  function timeCell(row, t) {
    const td = cell(row, formatTime(t), "nowrap");
    td.title = String(t || "");
    return td;
  }

  function format(value, kind) {
    if (value === null || value === undefined) return "-";
    switch (kind) {
      case "rate": return (Number(value) * 100).toFixed(1) + " %";
      case "percent": return Number(value).toFixed(1) + " %";
      case "bytes": return formatBytes(value);
      case "usd": return formatUsd(value);
      default: return typeof value === "number" ? formatInt(value) : String(value);
    }
  }

  function pick(obj, dotted) {
    return dotted.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function cell(row, text, cls) {
    const td = el("td", text, cls);
    row.appendChild(td);
    return td;
  }

  function setStatus(node, text, kind) {
    node.textContent = text;
    node.className = "status" + (kind ? " " + kind : "");
  }

  function showError(node, err) {
    if (err) {
      node.textContent = err.message || String(err);
      node.hidden = false;
    } else {
      node.textContent = "";
      node.hidden = true;
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // -- readiness ---------------------------------------------------------------------------------

  /// A half-circle gauge of a 0..100 score, with a tick at the threshold.
  function gaugeSvg(score, minScore) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 200 115");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "readiness score " + score + " of 100");
    const arc = "M 20 100 A 80 80 0 0 1 180 100";
    const track = document.createElementNS(SVG_NS, "path");
    track.setAttribute("d", arc);
    track.setAttribute("class", "track");
    svg.appendChild(track);
    const length = Math.PI * 80;
    const value = document.createElementNS(SVG_NS, "path");
    value.setAttribute("d", arc);
    value.setAttribute("class", "value");
    const shown = Math.max(0, Math.min(100, Number(score) || 0));
    value.setAttribute("stroke-dasharray", (length * shown) / 100 + " " + length);
    if (shown === 0) value.setAttribute("stroke-opacity", "0");
    svg.appendChild(value);
    // The threshold's tick: at angle pi * (1 - min/100) on the same circle.
    const a = Math.PI * (1 - Math.max(0, Math.min(100, Number(minScore) || 0)) / 100);
    const tick = document.createElementNS(SVG_NS, "line");
    tick.setAttribute("x1", String(100 + 66 * Math.cos(a)));
    tick.setAttribute("y1", String(100 - 66 * Math.sin(a)));
    tick.setAttribute("x2", String(100 + 94 * Math.cos(a)));
    tick.setAttribute("y2", String(100 - 94 * Math.sin(a)));
    tick.setAttribute("class", "mark");
    svg.appendChild(tick);
    const text = document.createElementNS(SVG_NS, "text");
    text.setAttribute("x", "100");
    text.setAttribute("y", "96");
    text.setAttribute("text-anchor", "middle");
    text.setAttribute("class", "score");
    text.textContent = String(score);
    svg.appendChild(text);
    return svg;
  }

  /// One line per threshold: met, or how many are missing.
  function missingList(r) {
    const ul = document.createElement("ul");
    const metrics = r.metrics || {};
    const thresholds = r.thresholds || {};
    for (const key of Object.keys(LABELS)) {
      if (!(key in thresholds)) continue;
      const have = Number(metrics[key] || 0);
      const need = Number(thresholds[key]);
      const li = document.createElement("li");
      li.dataset.metric = key;
      if (have >= need) {
        li.className = "met";
        li.textContent = LABELS[key] + ": " + formatInt(have) + " of " + formatInt(need) + " (met)";
      } else {
        li.className = "missing";
        const missing = need - have;
        const label = missing === 1 ? LABEL_ONE[key] : LABELS[key];
        li.textContent = "needs " + formatInt(missing) + " more " + label + " (" + formatInt(have) + " of " + formatInt(need) + ")";
      }
      ul.appendChild(li);
    }
    if ("min_score" in thresholds) {
      const li = document.createElement("li");
      li.dataset.metric = "min_score";
      const met = Number(r.readiness_score) >= Number(thresholds.min_score);
      li.className = met ? "met" : "missing";
      li.textContent = "score " + r.readiness_score + " of at least " + thresholds.min_score + (met ? " (met)" : "");
      ul.appendChild(li);
    }
    return ul;
  }

  function gauge(r) {
    const status = ["ready", "almost_ready", "not_ready"].includes(r.status) ? r.status : "not_ready";
    const box = el("div", null, "gauge " + status);
    box.dataset.platform = r.platform;
    box.dataset.score = String(r.readiness_score);
    box.dataset.ready = String(Boolean(r.is_ready));
    box.appendChild(el("h3", r.platform));
    box.appendChild(gaugeSvg(r.readiness_score, (r.thresholds || {}).min_score));
    box.appendChild(el("span", String(r.status).replace("_", " "), "badge " + status));
    const rate = el("p", "positive feedback rate " + format((r.metrics || {}).positive_feedback_rate, "rate"), "hint");
    box.appendChild(rate);
    box.appendChild(missingList(r));
    return box;
  }

  async function loadReadiness() {
    const box = $("readiness-gauges");
    const error = $("readiness-error");
    try {
      const list = await getJson("/api/platforms");
      state.platforms = (list.items || []).map((p) => p.platform);
      fillPlatformSelect();
      const answers = await Promise.all(
        state.platforms.map((p) => getJson("/api/feedback/readiness/" + encodeURIComponent(p))),
      );
      clear(box);
      for (const r of answers) box.appendChild(gauge(r));
      showError(error, null);
    } catch (e) {
      clear(box);
      showError(error, e);
      throw e;
    }
  }

  function fillPlatformSelect() {
    const select = $("export-platform");
    const chosen = select.value;
    clear(select);
    for (const p of state.platforms) {
      const o = el("option", p);
      o.value = p;
      select.appendChild(o);
    }
    if (state.platforms.includes(chosen)) select.value = chosen;
  }

  // -- stats -------------------------------------------------------------------------------------

  async function loadStats() {
    const error = $("stats-error");
    try {
      const stats = await getJson("/api/feedback/stats");
      for (const node of document.querySelectorAll("[data-stat]")) {
        const value = pick(stats, node.dataset.stat);
        node.dataset.value = value === undefined ? "" : JSON.stringify(value);
        node.textContent = format(value, node.dataset.format);
      }
      $("stats-generated-at").textContent = String(stats.generated_at || "-");
      const body = $("by-platform").querySelector("tbody");
      clear(body);
      const platforms = Object.keys(stats.by_platform || {}).sort();
      for (const p of platforms) {
        const s = stats.by_platform[p];
        const tr = document.createElement("tr");
        tr.dataset.platform = p;
        cell(tr, p);
        for (const k of ["total", "active", "archived", "successful", "with_feedback"]) {
          const td = cell(tr, formatInt(s[k]), "num");
          td.dataset.field = k;
          td.dataset.value = JSON.stringify(s[k]);
        }
        cell(tr, s.total ? format(s.with_feedback / s.total, "rate") : "-", "num");
        cell(tr, formatBytes(s.hot_bytes), "num").dataset.value = JSON.stringify(s.hot_bytes);
        cell(tr, formatBytes(s.archive_bytes), "num").dataset.value = JSON.stringify(s.archive_bytes);
        body.appendChild(tr);
      }
      const recs = $("recommendations");
      clear(recs);
      for (const r of stats.recommendations || []) recs.appendChild(el("li", r));
      const hot = Number(stats.storage.hot_bytes) || 0;
      const archive = Number(stats.storage.archive_bytes) || 0;
      const all = hot + archive;
      $("storage-bar").querySelector(".hot").style.width = all ? (100 * hot) / all + "%" : "0";
      $("storage-bar").querySelector(".archive").style.width = all ? (100 * archive) / all + "%" : "0";
      showError(error, null);
    } catch (e) {
      showError(error, e);
      throw e;
    }
  }

  // -- archive preview ---------------------------------------------------------------------------

  async function previewArchive(ev) {
    ev.preventDefault();
    const status = $("archive-status");
    const table = $("archive-objects");
    const body = { dry_run: true };
    const days = $("archive-days").value.trim();
    if (days) {
      const n = Number(days);
      if (!Number.isInteger(n) || n < 1) {
        setStatus(status, "Days must be a whole number of at least 1.", "bad");
        return;
      }
      body.days_old = n;
    }
    setStatus(status, "Asking for a dry run...");
    try {
      const report = await (await call("POST", "/api/feedback/archive", body)).json();
      const tbody = table.querySelector("tbody");
      clear(tbody);
      for (const a of report.archives || []) {
        const tr = document.createElement("tr");
        cell(tr, a.platform);
        cell(tr, a.date);
        cell(tr, formatInt(a.record_count), "num");
        cell(tr, formatBytes(a.raw_bytes), "num");
        cell(tr, formatBytes(a.compressed_bytes), "num");
        cell(tr, Number(a.compression_ratio).toFixed(2), "num");
        cell(tr, a.storage_class);
        cell(tr, a.object_key, "mono");
        tbody.appendChild(tr);
      }
      table.hidden = (report.archives || []).length === 0;
      setStatus(
        status,
        "Dry run (nothing written): records older than " + report.cutoff + ": " + formatInt(report.archived_records) +
          " would be archived into " + formatInt((report.archives || []).length) + " objects.",
        "ok",
      );
    } catch (e) {
      setStatus(status, e.message, "bad");
    }
  }

  // -- exports -----------------------------------------------------------------------------------

  async function loadExports(more) {
    const error = $("exports-error");
    const tbody = $("exports-list").querySelector("tbody");
    try {
      let path = "/api/exports?limit=50";
      if (more && state.exportsCursor) path += "&cursor=" + encodeURIComponent(state.exportsCursor);
      const page = await getJson(path);
      if (!more) clear(tbody);
      for (const m of page.items || []) {
        const tr = document.createElement("tr");
        tr.dataset.exportId = m.export_id;
        cell(tr, m.export_id, "mono nowrap");
        timeCell(tr, m.created_at);
        cell(tr, m.caller);
        cell(tr, m.platform);
        cell(tr, m.format);
        cell(tr, m.split ? m.split.side + " (" + m.split.validation_fraction + ")" : "-");
        cell(tr, formatInt(m.lines), "num").dataset.value = JSON.stringify(m.lines);
        cell(tr, formatBytes(m.bytes), "num");
        cell(tr, String(m.sha256 || "").slice(0, 16) + "...", "mono").title = String(m.sha256 || "");
        tbody.appendChild(tr);
      }
      if (!tbody.firstChild) {
        const tr = document.createElement("tr");
        const td = cell(tr, "No export yet.", "muted");
        td.colSpan = 9;
        tbody.appendChild(tr);
      }
      state.exportsCursor = page.next_cursor || null;
      $("exports-more").hidden = !state.exportsCursor;
      showError(error, null);
    } catch (e) {
      showError(error, e);
      throw e;
    }
  }

  function exportQuery() {
    const q = new URLSearchParams();
    q.set("format", $("export-format").value);
    const split = $("export-split").value;
    if (split) {
      q.set("split", split);
      const f = $("export-fraction").value.trim();
      if (f) q.set("validation_fraction", f);
    }
    q.set("success_only", String($("export-success-only").checked));
    q.set("with_feedback_only", String($("export-feedback-only").checked));
    q.set("include_archived", String($("export-archived").checked));
    q.set("include_metadata", String($("export-metadata").checked));
    if ($("export-since").value) q.set("since", $("export-since").value);
    if ($("export-until").value) q.set("until", $("export-until").value);
    const limit = $("export-limit").value.trim();
    if (limit) q.set("limit", limit);
    return q;
  }

  function fileName(resp, platform) {
    const cd = resp.headers.get("Content-Disposition") || "";
    const m = /filename="([^"\/\\]+)"/.exec(cd);
    return m && !m[1].startsWith(".") ? m[1] : "training_data_" + platform + ".jsonl";
  }

  async function downloadExport(ev) {
    ev.preventDefault();
    const status = $("export-status");
    const platform = $("export-platform").value;
    if (!platform) {
      setStatus(status, "No platform to export (load the page with a token first).", "bad");
      return;
    }
    setStatus(status, "Exporting " + platform + "...");
    const path = "/api/feedback/export/" + encodeURIComponent(platform) + "?" + exportQuery().toString();
    try {
      // On Lambda an export over 5 MiB answers 303 to the bucket: this page may only talk to its
      // own origin (Content-Security-Policy), so it says so instead of following.
      const resp = await call("GET", path, undefined, { redirect: "manual" });
      if (resp.type === "opaqueredirect") {
        setStatus(status, "The export is larger than 5 MiB and was written to the bucket; fetch it with the CLI or `curl -L` and the same query.", "bad");
        return;
      }
      const blob = await resp.blob();
      const lines = resp.headers.get("X-Export-Lines");
      const id = resp.headers.get("X-Export-Id");
      const name = fileName(resp, platform);
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      status.dataset.lines = lines || "";
      status.dataset.exportId = id || "";
      setStatus(
        status,
        "Downloaded " + name + ": " + (lines === null ? "?" : formatInt(lines)) + " lines, " + formatBytes(blob.size) +
          (id ? ", export " + id : " (no line written, no manifest)"),
        "ok",
      );
      loadExports(false).catch(() => {});
    } catch (e) {
      setStatus(status, e.message, "bad");
    }
  }

  // -- a user's data -----------------------------------------------------------------------------

  function userRow(item) {
    const tr = document.createElement("tr");
    tr.dataset.interactionId = item.interaction_id;
    cell(tr, item.interaction_id, "mono nowrap");
    timeCell(tr, item.created_at);
    cell(tr, item.platform);
    cell(tr, item.kind);
    cell(tr, item.success ? "yes" : "no");
    cell(tr, item.has_feedback ? String(item.last_feedback_type) : "-");
    cell(tr, item.archived ? "yes" : "no");
    const msg = cell(tr, item.user_message, "message");
    msg.title = String(item.user_message || "");
    return tr;
  }

  async function lookupUser(more) {
    const status = $("user-status");
    const table = $("user-records");
    const tbody = table.querySelector("tbody");
    if (!more) {
      state.userId = $("user-id").value.trim();
      state.userCursor = null;
      clear(tbody);
      $("delete-result").hidden = true;
      cancelDelete();
    }
    if (!state.userId) {
      setStatus(status, "Type a user id.", "bad");
      $("user-delete").disabled = true;
      return;
    }
    setStatus(status, "Looking up...");
    try {
      let path = "/api/interactions?limit=100&user_id=" + encodeURIComponent(state.userId);
      if (more && state.userCursor) path += "&cursor=" + encodeURIComponent(state.userCursor);
      const page = await getJson(path);
      for (const item of page.items || []) tbody.appendChild(userRow(item));
      state.userCursor = page.next_cursor || null;
      $("user-more").hidden = !state.userCursor;
      const n = tbody.children.length;
      table.hidden = n === 0;
      status.dataset.count = String(n);
      setStatus(
        status,
        n === 0
          ? "No interactions for user " + state.userId + "."
          : formatInt(n) + (state.userCursor ? "+" : "") + " interactions of user " + state.userId + ".",
        "ok",
      );
      $("user-delete").disabled = false;
    } catch (e) {
      setStatus(status, e.message, "bad");
    }
  }

  function askDelete() {
    if (!state.userId) return;
    $("user-delete").hidden = true;
    $("user-delete-confirm").hidden = false;
    $("user-delete-cancel").hidden = false;
    $("user-delete-confirm").textContent = "Yes, delete all data of " + state.userId;
  }

  function cancelDelete() {
    $("user-delete").hidden = false;
    $("user-delete-confirm").hidden = true;
    $("user-delete-cancel").hidden = true;
  }

  async function deleteUser() {
    const status = $("user-status");
    const userId = state.userId;
    cancelDelete();
    if (!userId) return;
    setStatus(status, "Deleting...");
    try {
      const answer = await (await call("DELETE", "/api/feedback/data?user_id=" + encodeURIComponent(userId))).json();
      const counts = $("delete-counts").querySelector("tbody");
      clear(counts);
      const deleted = answer.deleted || {};
      for (const k of Object.keys(deleted)) {
        const tr = document.createElement("tr");
        tr.dataset.field = k;
        tr.appendChild(el("th", k.replace(/_/g, " ")));
        const td = cell(tr, formatInt(deleted[k]));
        td.dataset.value = JSON.stringify(deleted[k]);
        counts.appendChild(tr);
      }
      if (answer.pending_erasure) {
        const tr = document.createElement("tr");
        tr.appendChild(el("th", "archive objects to rewrite"));
        cell(tr, formatInt(answer.pending_erasure.archive_objects));
        counts.appendChild(tr);
      }
      const list = $("affected-exports");
      clear(list);
      const affected = answer.affected_exports || [];
      for (const id of affected) {
        const li = el("li", id);
        li.dataset.exportId = id;
        list.appendChild(li);
      }
      if (affected.length === 0) list.appendChild(el("li", "none: no export held this user's records", "muted"));
      $("delete-result").hidden = false;
      $("user-delete").disabled = true;
      // Read back: the user should have nothing left.
      state.userCursor = null;
      const tbody = $("user-records").querySelector("tbody");
      clear(tbody);
      const page = await getJson("/api/interactions?limit=100&user_id=" + encodeURIComponent(userId));
      for (const item of page.items || []) tbody.appendChild(userRow(item));
      const left = tbody.children.length;
      $("user-records").hidden = left === 0;
      $("user-more").hidden = true;
      status.dataset.count = String(left);
      setStatus(
        status,
        "Deleted the data of user " + userId + ": " + formatInt(deleted.interactions || 0) + " interactions; " +
          formatInt(left) + " left; " + formatInt(affected.length) + " exports held their records.",
        left === 0 ? "ok" : "bad",
      );
      loadStats().catch(() => {});
      loadReadiness().catch(() => {});
    } catch (e) {
      setStatus(status, e.message, "bad");
    }
  }

  // -- the page ----------------------------------------------------------------------------------

  async function loadAll() {
    const status = $("auth-status");
    if (!token()) {
      setStatus(status, "No token yet. Paste an admin token above.");
      document.body.dataset.auth = "none";
      return;
    }
    setStatus(status, "Loading...");
    document.body.dataset.auth = "loading";
    const results = await Promise.allSettled([loadStats(), loadReadiness(), loadExports(false)]);
    const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason);
    const refused = failed.find((e) => e && (e.status === 401 || e.status === 403));
    if (refused) {
      setStatus(status, refused.message, "bad");
      document.body.dataset.auth = refused.status === 401 ? "refused" : "not-admin";
    } else if (failed.length) {
      setStatus(status, "Token accepted, but some figures could not be read: " + failed[0].message, "bad");
      document.body.dataset.auth = "accepted";
    } else {
      setStatus(status, "Token accepted (admin). Figures as of " + new Date().toISOString() + ".", "ok");
      document.body.dataset.auth = "accepted";
    }
  }

  function useToken(ev) {
    ev.preventDefault();
    const input = $("token-input");
    const t = input.value.trim().replace(/^Bearer\s+/i, "");
    input.value = "";
    if (!t) {
      setStatus($("auth-status"), "Paste a token first.", "bad");
      return;
    }
    // A JWT is three base64url parts; anything else could not even be sent as a header.
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(t)) {
      setStatus($("auth-status"), "That is not a JWT (three base64url parts separated by dots). Paste the admin token itself.", "bad");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, t);
    loadAll();
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", useToken);
    $("token-forget").addEventListener("click", forgetToken);
    $("refresh").addEventListener("click", () => loadAll());
    $("archive-form").addEventListener("submit", previewArchive);
    $("export-form").addEventListener("submit", downloadExport);
    $("exports-more").addEventListener("click", () => loadExports(true).catch(() => {}));
    $("user-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      lookupUser(false);
    });
    $("user-more").addEventListener("click", () => lookupUser(true));
    $("user-delete").addEventListener("click", askDelete);
    $("user-delete-cancel").addEventListener("click", cancelDelete);
    $("user-delete-confirm").addEventListener("click", deleteUser);
    loadAll();
  });
})();
