"use strict";
// llmtrace view: draws the trace from the JSON blob. Every text of the trace goes through esc().
(function () {
  var times = { script: performance.now() };
  var D = JSON.parse(document.getElementById("llmtrace-data").textContent);
  times.parsed = performance.now();
  var T = D.trace, S = D.spans, N = S.length;
  var rowsEl = document.getElementById("rows"), panel = document.getElementById("panel");
  var q = document.getElementById("q"), allBox = document.getElementById("all");
  var state = { all: false, collapsed: new Set(), sel: -1, query: "", hits: [], hit: -1, match: null, visible: [] };

  var ESC = /[&<>"']/;
  function esc(v) {
    v = String(v);
    if (!ESC.test(v)) return v;
    return v.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function dur(us) {  // as llmtrace's fmt.duration
    if (us == null) return "—";
    var s = us / 1e6;
    if (s < 1) return Math.round(us / 1000) + "ms";
    if (s < 60) return s.toFixed(2) + "s";
    var m = Math.floor(s / 60), r = Math.floor(s % 60);
    if (m < 60) return m + "m" + (r < 10 ? "0" : "") + r + "s";
    var h = Math.floor(m / 60); m = m % 60;
    return h + "h" + (m < 10 ? "0" : "") + m + "m";
  }
  function num(n) { return n == null ? "—" : Number(n).toLocaleString("en-US"); }
  function plural(n, w) { return num(n) + " " + w + (n === 1 ? "" : "s"); }
  function json(v) { try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); } }
  function isObj(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function local(us) {
    var d = new Date(us / 1000), p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  // --- the two trees: shown (plumbing folded, as `show`) and all spans ---------------------------
  function parentOf(s, all) {
    if (all) return s.q !== undefined ? s.q : (s.p !== undefined ? s.p : -1);
    return s.h ? null : (s.p !== undefined ? s.p : -1);
  }
  function kidsOf(all) {
    var kids = new Map([[-1, []]]);
    for (var i = 0; i < N; i++) {
      var p = parentOf(S[i], all);
      if (p === null) continue;
      var list = kids.get(p);
      if (!list) kids.set(p, list = []);
      list.push(i);
    }
    return kids;
  }
  var trees = { false: kidsOf(false), true: kidsOf(true) };
  var shownCount = N - S.filter(function (s) { return s.h; }).length;

  // --- time axis: the spans' own span of time ------------------------------------------------------
  var t0 = Infinity, t1 = -Infinity;
  S.forEach(function (s) { t0 = Math.min(t0, s.s); t1 = Math.max(t1, s.s + (s.d || 0)); });
  if (!N) { t0 = 0; t1 = 1; }
  var total = Math.max(1, t1 - t0);
  var axis = document.getElementById("axis"), ticks = "";
  [0, 0.25, 0.5, 0.75].forEach(function (f) {
    ticks += '<span class="tick" style="left:' + f * 100 + '%">' + (f ? dur(total * f) : "0") + "</span>";
  });
  axis.innerHTML = ticks;
  document.getElementById("axisnote").textContent = "time from the first span, " + dur(t0) + " into the run; " + dur(total) + " in all";

  // --- header ---------------------------------------------------------------------------------------
  var tt = T.totals;
  document.getElementById("name").textContent = T.name;
  document.getElementById("tid").textContent = T.short;
  document.getElementById("tid").title = T.id;
  var st = document.getElementById("status");
  st.textContent = T.status + (T.exit_code ? " (exit " + T.exit_code + ")" : "");
  st.className = "chip " + T.status;
  document.getElementById("when").textContent = local(T.start_us) + " · " + dur(T.end_us == null ? null : T.end_us - T.start_us);
  var cards = [["Duration", dur(T.end_us == null ? null : T.end_us - T.start_us), "dur"], ["LLM calls", num(tt.llm_calls), "llm"],
    ["Tool calls", num(tt.tool_calls), "tools"], ["Tokens", num(tt.input_tokens) + " in / " + num(tt.output_tokens) + " out", "tokens"],
    ["Cost", tt.cost_text, "cost"]];
  if (tt.cache_hits) cards.push(["From the cache", num(tt.cache_hits) + " · saved " + tt.saved_text, "hits"]);
  if (tt.retries) cards.push(["Retries", num(tt.retries), "retries"]);
  if (tt.errors) cards.push(["Failed spans", num(tt.errors), "errors"]);
  if (T.score) cards.push(["Score", T.score, "score"]);
  document.getElementById("cards").innerHTML = cards.map(function (c) {
    return '<div class="card ' + c[2] + '" id="card-' + c[2] + '"><div class="t">' + esc(c[0]) + '</div><div class="v">' + esc(c[1]) + "</div></div>";
  }).join("");
  if (T.error) { var er = document.getElementById("error"); er.textContent = T.error; er.hidden = false; }
  if (T.io) {  // one request of a split run: what it was asked and answered
    var io = document.getElementById("io"), text = function (v) { return typeof v === "string" ? v : JSON.stringify(v); };
    io.textContent = (T.io.input != null ? "input: " + text(T.io.input) : "") +
      (T.io.output != null ? (T.io.input != null ? "\n" : "") + "output: " + text(T.io.output) : "");
    io.hidden = false;
  }
  document.getElementById("allcount").textContent = "(" + num(shownCount) + " of " + num(N) + ")";

  // --- rows -----------------------------------------------------------------------------------------
  function runs(s) {
    var L = s.L, out = "";
    for (var i = 0; i < L.length; i += 2) {
      var text = L[i], cls = L[i + 1];
      if (cls.charAt(0) === "k") { out += '<span class="' + cls + '">' + esc(text.trim()) + "</span> "; continue; }
      out += cls ? '<span class="' + cls + '">' + esc(text) + "</span>" : esc(text);
    }
    return out;
  }
  function plain(s) { var t = ""; for (var i = 0; i < s.L.length; i += 2) t += s.L[i]; return t; }
  function bar(s) {
    var left = (s.s - t0) / total * 100, d = s.d == null ? t1 - s.s : s.d, width = d / total * 100;
    var cls = "bar " + s.k + (s.st === "error" ? " err" : "") + (s.hit ? " hit" : "") + (s.d == null ? " run" : "");
    var style = "left:" + left.toFixed(3) + "%;width:" + width.toFixed(3) + "%";
    if (s.ft != null && s.d && !s.hit) { cls += " ttft"; style += ";--t:" + Math.min(100, s.ft / s.d * 100).toFixed(1) + "%"; }
    return '<div class="' + cls + '" style="' + style + '"></div>';
  }
  function visibleRows() {
    var kids = trees[state.all], out = [], stack = [], tops = kids.get(-1) || [], foldAt = -1;
    var m = state.match;
    for (var i = tops.length - 1; i >= 0; i--) stack.push([tops[i], 0]);
    if (D.hidden) foldAt = tops.findIndex(function (i) { return i >= D.head; });
    var foldBefore = foldAt >= 0 ? tops[foldAt] : -2;
    while (stack.length) {
      var e = stack.pop(), i = e[0];
      if (m && !m.keep.has(i)) continue;
      if (i === foldBefore && !m) out.push([-1, 0]);
      out.push(e);
      var ch = kids.get(i);
      if (ch && (m || !state.collapsed.has(i))) for (var j = ch.length - 1; j >= 0; j--) stack.push([ch[j], e[1] + 1]);
    }
    return out;
  }
  // A long list is drawn a window at a time (rows are all one height): a 5,000-span trace opens as fast
  // as a small one. Up to ALL_ROWS rows are all in the page (the browser's own find sees them).
  var ALL_ROWS = 500, OVER = 30, rowH = 26, drawn = [-1, -1], rowsIn = document.createElement("div");
  rowsIn.className = "rows-in";
  rowsEl.appendChild(rowsIn);
  function rowHtml(e) {
    var i = e[0], m = state.match;
    if (i < 0) {
      return '<div class="row fold-row" style="--d:0"><div class="lbl fold">… ' + esc(plural(D.hidden, "more step")) +
        " not in this file (llmtrace view --all includes every one) …</div><div class=\"wf\"></div></div>";
    }
    var s = S[i], has = trees[state.all].has(i), cls = "row";
    if (i === state.sel) cls += " sel";
    if (m) cls += m.hit.has(i) ? " hit" : " ctx";
    var tw = has ? (!m && state.collapsed.has(i) ? " shut" : " open") : "";
    return '<div class="' + cls + '" data-i="' + i + '" role="treeitem" style="--d:' + e[1] + '">' +
      '<div class="lbl"><span class="tw' + tw + '"></span>' + runs(s) + "</div>" + '<div class="wf">' + bar(s) + "</div></div>";
  }
  function draw(force) {
    var n = state.visible.length, a = 0, b = n;
    if (n > ALL_ROWS) {
      var h = rowsEl.clientHeight || 800;
      a = Math.max(0, Math.floor(rowsEl.scrollTop / rowH) - OVER);
      b = Math.min(n, Math.ceil((rowsEl.scrollTop + h) / rowH) + OVER);
    }
    if (!force && a === drawn[0] && b === drawn[1]) return;
    drawn = [a, b];
    var html = [];
    for (var k = a; k < b; k++) html.push(rowHtml(state.visible[k]));
    rowsIn.style.height = n * rowH + "px";
    rowsIn.style.paddingTop = a * rowH + "px";
    rowsIn.innerHTML = html.join("");
  }
  function render() {
    state.visible = visibleRows();
    draw(true);
  }
  var pending = false;
  rowsEl.addEventListener("scroll", function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(false); });
  }, { passive: true });
  rowsEl.addEventListener("mouseover", function (ev) {  // full text on hover, made only then
    var lbl = ev.target.closest(".lbl"), row = ev.target.closest(".row[data-i]");
    if (lbl && row && !lbl.title) lbl.title = plain(S[Number(row.dataset.i)]);
    if (ev.target.classList.contains("bar") && row && !ev.target.title) {
      var s = S[Number(row.dataset.i)];
      ev.target.title = dur(s.d) + (s.ft != null ? " · first token after " + dur(s.ft) : "") + (s.hit ? " · answered from the cache" : "");
    }
  });
  function scrollTo(i) {
    var k = state.visible.findIndex(function (e) { return e[0] === i; });
    if (k < 0) return;
    var top = k * rowH, h = rowsEl.clientHeight;
    if (top < rowsEl.scrollTop) rowsEl.scrollTop = top;
    else if (top + rowH > rowsEl.scrollTop + h) rowsEl.scrollTop = top + rowH - h;
    draw(false);
  }

  // --- search: matching spans and the spans above them ------------------------------------------------
  var hay = null;
  function haystack(i) {
    var s = S[i];
    return (plain(s) + "\n" + s.nm + "\n" + (s.m || "") + "\n" + (s.et || "") + " " + (s.em || "") + "\n" +
      JSON.stringify([s.in, s.out, s.tcs])).toLowerCase();  // what `ls --grep` searches: not the raw JSON
  }
  function search(text) {
    state.query = text;
    var words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { state.match = null; state.hits = []; document.getElementById("qcount").textContent = ""; render(); return; }
    if (!hay) { hay = new Array(N); }
    var hit = new Set(), keep = new Set(), hidden = 0;
    for (var i = 0; i < N; i++) {
      var h = hay[i] || (hay[i] = haystack(i));
      if (!words.every(function (w) { return h.indexOf(w) >= 0; })) continue;
      if (parentOf(S[i], state.all) === null) { hidden++; continue; }
      hit.add(i);
      for (var p = i; p !== -1 && p !== null && !keep.has(p); p = parentOf(S[p], state.all)) keep.add(p);
    }
    state.match = { hit: hit, keep: keep };
    render();
    state.hits = state.visible.map(function (e) { return e[0]; }).filter(function (i) { return hit.has(i); });
    state.hit = -1;
    var c = plural(hit.size, "match").replace("matchs", "matches");
    if (hidden) c += " · " + num(hidden) + " more in LangChain plumbing (tick all spans)";
    document.getElementById("qcount").textContent = c;
  }
  function jump(step) {
    if (!state.hits.length) return;
    state.hit = (state.hit + step + state.hits.length) % state.hits.length;
    select(state.hits[state.hit], true);
  }

  // --- the panel -------------------------------------------------------------------------------------
  function pre(v, cls) {
    var text = typeof v === "string" ? v : json(v);
    return '<pre class="' + (cls || (typeof v === "string" ? "text" : "json")) + '">' + esc(text) + "</pre>";
  }
  function section(title, body) { return body ? "<h3>" + esc(title) + "</h3>" + body : ""; }
  function facts(rows) {
    var out = rows.filter(function (r) { return r[1] !== undefined && r[1] !== null && r[1] !== ""; })
      .map(function (r) { return "<dt>" + esc(r[0]) + "</dt><dd" + (r[2] ? ' class="' + r[2] + '"' : "") + ">" + esc(r[1]) + "</dd>"; });
    return out.length ? '<dl class="facts">' + out.join("") + "</dl>" : "";
  }
  function raw(title, v, open) {
    if (v === undefined || v === null) return "";
    var text = json(v);
    return "<details" + (open ? " open" : "") + "><summary><b>" + esc(title) + "</b> · " + esc(num(text.length)) + " chars</summary>" + pre(v, "json") + "</details>";
  }
  function callText(name, args) {
    if (isObj(args)) return name + "(" + Object.keys(args).map(function (k) { return k + "=" + JSON.stringify(args[k]); }).join(", ") + ")";
    return name + "(" + (args === undefined || args === null ? "" : typeof args === "string" ? JSON.stringify(args) : JSON.stringify(args)) + ")";
  }
  function content(c) {
    if (typeof c === "string") return c;
    if (Array.isArray(c)) return c.map(function (p) { return isObj(p) && typeof p.text === "string" ? p.text : json(p); }).join("\n");
    return json(c);
  }
  function message(m) {
    if (!isObj(m)) return '<div class="msg"><div class="body">' + esc(content(m)) + "</div></div>";
    // LangChain's class names (AIMessageChunk, HumanMessage) read as roles: ai, human
    var role = String(m.role || m.type || "message").replace(/(Message)?(Chunk)?$/, "").toLowerCase() || "message";
    var body = content(m.content), calls = m.tool_calls || [];
    var head = role + (m.name ? " · " + m.name : "") + (m.tool_call_id ? " · " + m.tool_call_id : "");
    var out = '<div class="msg ' + esc(role) + '"><div class="role">' + esc(head) + "</div>";
    if (body) out += '<div class="body">' + esc(body) + "</div>";
    calls.forEach(function (tc) {
      var fn = tc.function || {}, args = tc.args !== undefined ? tc.args : fn.arguments;
      if (typeof args === "string") { try { args = JSON.parse(args); } catch (e) { /* shown as sent */ } }
      out += '<div class="call">→ ' + esc(callText(tc.name || fn.name || "?", args)) + "</div>";
    });
    return out + "</div>";
  }
  function kv(obj) {
    return '<table class="kv">' + Object.keys(obj).map(function (k) {
      var v = obj[k];
      return "<tr><td>" + esc(k) + '</td><td class="val">' + esc(typeof v === "string" ? v : json(v)) + "</td></tr>";
    }).join("") + "</table>";
  }
  function attemptsTable(log) {
    return '<table class="kv">' + log.map(function (a) {
      return "<tr><td>attempt " + esc(a.attempt) + '</td><td class="val">' + esc((a.status ? a.status + " · " : "") + (a.error || "") +
        (a.wait_s != null ? " · waited " + a.wait_s + "s" : "")) + "</td></tr>";
    }).join("") + "</table>";
  }
  function spanPanel(i) {
    var s = S[i], ref = D.refs[i], out = "";
    var kind = { llm: "LLM", tool: "tool", chain: "chain", retriever: "retriever", embedding: "embedding" }[s.k] || s.k;
    var title = s.k === "llm" || s.k === "embedding" ? (s.m || s.mr || s.nm) : s.nm;
    out += '<h2><span class="k ' + esc(s.k) + '">' + esc(kind) + "</span>" + esc(title) +
      ' <span class="chip ' + esc(s.st || "ok") + '">' + esc(s.st || "ok") + "</span></h2>";
    out += '<div class="sub">span <code>' + esc(ref) + "</code> · <code>llmtrace show " + esc(T.short) + " --span " + esc(ref) + "</code></div>";
    var f = [["Started", "+" + dur(s.s) + " after the trace started"], ["Duration", dur(s.d)]];
    if (s.n) f.push(["Step", String(s.n)]);
    if (s.k === "llm" || s.k === "embedding") {
      f.push(["Model", s.mr && s.m && s.mr !== s.m ? s.mr + " → " + s.m : (s.m || s.mr)], ["Provider", s.pv]);
      var tok = num(s.ti) + " in" + (s.k === "llm" ? " / " + num(s.to) + " out" : "");
      if (s.tc) tok += " · " + num(s.tc) + " cached";
      if (s.tr) tok += " · " + num(s.tr) + " reasoning";
      f.push(["Tokens", tok]);
      f.push(["Cost", s.hit ? "$0 (saved " + s.sv + ")" : s["$"], s["$"] === "unpriced" ? "w" : ""]);
      if (s.hit) f.push(["Cache", "answered from the cache (" + s.hit + "), no request made"]);
      if (s.str) f.push(["Streamed", (s.ft != null ? "first token after " + dur(s.ft) : "yes") + (s.md && s.md.chunks != null ? " · " + plural(s.md.chunks, "chunk") : "")]);
      f.push(["Finish reason", s.fr]);
      if (s.at != null) f.push(["Attempts", String(s.at) + (s.at > 1 ? " (" + (s.at - 1) + " retried)" : ""), s.at > 1 ? "w" : ""]);
    }
    if (s.k === "tool" && s.md && s.md.description) f.push(["Description", s.md.description]);
    out += facts(f);
    if (s.cl) out += '<div class="note">Long texts or lists of this span are clipped in this file (at ' + num(D.clip_chars) +
      " characters); <code>llmtrace show " + esc(T.short) + " --span " + esc(ref) + "</code> prints them whole.</div>";
    if (s.et || s.em) out += section("Error", '<div class="err">' + esc((s.et ? s.et + ": " : "") + (s.em || "")) + "</div>");
    if (s.tb) out += pre(s.tb, "tb");
    if (s.al) out += section("Failed attempts", attemptsTable(s.al));
    var inp = isObj(s.in) ? s.in : {}, o = s.out;
    if (s.k === "llm") {
      var msgs = inp.messages || inp.prompts;
      if (Array.isArray(msgs) && Array.isArray(msgs[0])) msgs = msgs[0];
      out += section("Messages", Array.isArray(msgs) ? msgs.map(message).join("") : (s.in !== undefined ? pre(s.in) : ""));
      var resp = isObj(o) ? o : { content: o };
      var tcs = s.tcs || resp.tool_calls || [];
      var answer = { role: "ai", content: resp.content, tool_calls: tcs };
      out += section("Response", resp.content || tcs.length ? message(answer) : (o !== undefined ? pre(o) : '<div class="empty">no response recorded</div>'));
    } else if (s.k === "tool") {
      out += section("Arguments", isObj(s.in) ? kv(s.in) : (s.in !== undefined ? pre(s.in) : ""));
      if (s.st !== "error" || o !== undefined) out += section("Result", o !== undefined ? pre(o) : '<div class="empty">none</div>');
    } else if (s.k === "retriever") {
      out += section("Query", pre(isObj(s.in) && s.in.query !== undefined ? s.in.query : s.in));
      if (Array.isArray(o)) out += section("Documents (" + o.length + ")", o.map(function (doc, j) {
        var meta = isObj(doc) && isObj(doc.metadata) ? doc.metadata : {};
        return '<div class="msg"><div class="role">doc ' + (j + 1) + (meta.score != null ? " · score " + esc(meta.score) : "") + '</div><div class="body">' +
          esc(isObj(doc) && doc.page_content !== undefined ? doc.page_content : json(doc)) + "</div></div>";
      }).join(""));
    } else {
      if (s.in !== undefined) out += section("Inputs", pre(s.in));
      if (o !== undefined) out += section("Outputs", pre(o));
    }
    if (s.rq !== undefined || s.rs !== undefined) {
      out += "<h3>Raw JSON</h3>" + raw("Request, as sent", s.rq, false) + raw("Response, as received", s.rs, false);
    }
    if (s.k === "llm" || s.k === "embedding") {
      if (s.in !== undefined) out += raw("LangChain input", s.in, false);
      if (s.out !== undefined) out += raw("LangChain output", s.out, false);
    }
    if (s.md) out += raw("Metadata", s.md, false);
    if (s.tg && s.tg.length) out += '<div class="sub">tags: ' + esc(s.tg.join(", ")) + "</div>";
    return out;
  }
  function tracePanel() {
    var out = '<h2>Trace <span class="chip ' + esc(T.status) + '">' + esc(T.status) + "</span></h2>";
    out += '<div class="sub">click a span to see its messages, arguments, results and raw JSON</div>';
    var f = [["Id", T.id], ["Script", T.script], ["Arguments", (T.argv || []).join(" ")], ["Folder", T.cwd],
      ["Started", local(T.start_us)], ["Ended", T.end_us == null ? "" : local(T.end_us)], ["Exit code", T.exit_code == null ? "" : String(T.exit_code)],
      ["Spans", num(N) + (shownCount !== N ? " (" + num(shownCount) + " shown without LangChain plumbing)" : "")]];
    if (D.hidden) f.push(["Not in this file", plural(D.hidden, "top-level step") + " between the first and last ones"]);
    if (T.run_id) f.push(["Run", T.run_id]);
    out += facts(f);
    var first = (trees[false].get(-1) || []).map(function (i) { return S[i]; }).filter(function (s) { return s.k === "chain"; })[0];
    if (first && first.in !== undefined) out += section("Input", pre(isObj(first.in) && Object.keys(first.in).length === 1 ? first.in[Object.keys(first.in)[0]] : first.in));
    if (first && first.out !== undefined) out += section("Output", pre(isObj(first.out) && Object.keys(first.out).length === 1 ? first.out[Object.keys(first.out)[0]] : first.out));
    if (T.error) out += section("Error", '<div class="err">' + esc(T.error) + "</div>");
    if (T.traceback) out += pre(T.traceback, "tb");
    if (T.tags && Object.keys(T.tags).length) out += section("Tags", kv(T.tags));
    if (T.feedback && T.feedback.length) out += section("Feedback", '<table class="kv">' + T.feedback.map(function (fb) {
      return "<tr><td>" + esc((fb.score > 0 ? "+" : "") + fb.score) + '</td><td class="val">' + esc((fb.comment || "") + "  " + local(fb.created_us)) + "</td></tr>";
    }).join("") + "</table>");
    out += '<div class="sub" style="margin-top:18px">made by llmtrace ' + esc(D.version) + " · keys: / search, ↑ ↓ move, ← → fold, Esc clear</div>";
    return out;
  }
  function select(i, scroll) {
    state.sel = i;
    var old = rowsEl.querySelector(".row.sel");
    if (old) old.classList.remove("sel");
    if (i >= 0 && scroll) scrollTo(i);
    var row = i >= 0 ? rowsEl.querySelector('.row[data-i="' + i + '"]') : null;
    if (row) row.classList.add("sel");
    panel.innerHTML = i >= 0 ? spanPanel(i) : tracePanel();
    panel.scrollTop = 0;
  }

  // --- events ----------------------------------------------------------------------------------------
  rowsEl.addEventListener("click", function (ev) {
    var row = ev.target.closest(".row[data-i]");
    if (!row) return;
    var i = Number(row.dataset.i);
    if (ev.target.classList.contains("tw") && trees[state.all].has(i) && !state.match) {
      toggle(i);
      return;
    }
    select(i, false);
  });
  function toggle(i, open) {
    var closed = state.collapsed.has(i);
    if (open === undefined ? closed : open) state.collapsed.delete(i); else state.collapsed.add(i);
    var top = rowsEl.scrollTop;
    render();
    rowsEl.scrollTop = top;
  }
  var timer = null;
  q.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { search(q.value); }, N > 2000 ? 200 : 60);
  });
  q.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { clearTimeout(timer); if (q.value !== state.query) search(q.value); jump(ev.shiftKey ? -1 : 1); ev.preventDefault(); }
    if (ev.key === "Escape") { q.value = ""; search(""); rowsEl.focus(); }
  });
  document.getElementById("next").addEventListener("click", function () { jump(1); });
  document.getElementById("prev").addEventListener("click", function () { jump(-1); });
  allBox.addEventListener("change", function () {
    state.all = allBox.checked;
    if (state.query) search(state.query); else render();
    if (state.sel >= 0) select(state.sel, true);
  });
  document.getElementById("expand").addEventListener("click", function () { state.collapsed.clear(); render(); });
  document.getElementById("collapse").addEventListener("click", function () {
    trees[state.all].forEach(function (kids, i) { if (i >= 0) state.collapsed.add(i); });
    (trees[state.all].get(-1) || []).forEach(function (i) { state.collapsed.add(i); });
    render();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target === q) return;
    if (ev.key === "/") { q.focus(); q.select(); ev.preventDefault(); return; }
    var rows = state.visible.filter(function (e) { return e[0] >= 0; }), at = rows.findIndex(function (e) { return e[0] === state.sel; });
    if (ev.key === "ArrowDown" || ev.key === "j") { if (rows.length) select(rows[Math.min(rows.length - 1, at + 1)][0], true); ev.preventDefault(); }
    else if (ev.key === "ArrowUp" || ev.key === "k") { if (rows.length) select(rows[Math.max(0, at - 1)][0], true); ev.preventDefault(); }
    else if ((ev.key === "ArrowLeft" || ev.key === "ArrowRight") && state.sel >= 0 && trees[state.all].has(state.sel) && !state.match) {
      toggle(state.sel, ev.key === "ArrowRight"); select(state.sel, true); ev.preventDefault();
    } else if (ev.key === "Escape") { select(-1); }
  });

  times.prepared = performance.now();
  render();
  times.rendered = performance.now();
  select(-1);
  void document.body.offsetHeight;  // lay the page out now: what "ready" measures
  window.llmtraceReady = times.laidOut = performance.now();
  window.llmtraceTimes = times;
  document.body.dataset.ready = "1";
})();
