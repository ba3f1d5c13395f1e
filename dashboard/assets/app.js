// vmss dashboard: renders the view the server pushes over server-sent events.
(function () {
  "use strict";
  const token = document.querySelector('meta[name="vmss-token"]').content;
  const PAGE = 100; // instance rows per page
  let snap = null, sel = location.hash.slice(1) || "overview", skeleton = "", page = 0;
  let picked = null; // the instance whose CPU is charted: {set, id, pts: {t, cols}}
  const rows = new Map(); // instance id → {tr, sig}: rows are redrawn only when they change
  const drawn = {}; // element id → the HTML it holds, to skip unchanged parts
  const series = {}; // chart data by key
  const charts = {};
  const $ = (q) => document.querySelector(q);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const pill = (s) => s ? `<span class="pill ${esc(s)}">${esc(s)}</span>` : `<span class="muted">—</span>`;
  const bytes = (n) => n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : (n || 0) + " B";
  const tail = (id) => id.slice(id.lastIndexOf("/") + 1);

  // vmssCPUPoints answers how many points the scale set's CPU chart (or, with
  // "picked", the picked instance's) has, for tests.
  window.vmssCPUPoints = (which) => {
    if (which === "picked") return picked ? picked.pts.t.length : 0;
    for (const k in charts) if (k.startsWith("cpu:")) return charts[k].plot.data[0].length;
    return 0;
  };
  window.vmssRenders = []; // {seq, ms, parse, layout, at, view}: the page's draw costs, read by benchmarks (view: a navigation, not an update)
  // vmssMeasure runs an action and resolves, once a rendered update satisfies
  // done(snapshot), with the milliseconds from the request to that render.
  window.vmssMeasure = (body, done) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    window.vmssOnRender = (s) => { if (done(s)) { window.vmssOnRender = null; resolve(performance.now() - t0); } };
    fetch("/api/action", { method: "POST", headers: { "Content-Type": "application/json", "X-Vmss-Token": token }, body: JSON.stringify(body) })
      .then((r) => { if (!r.ok) r.text().then((t) => reject(new Error(r.status + " " + t))); }, reject);
  });

  // Views arriving faster than the page draws are coalesced: one parse and
  // one draw per animation frame, of the latest view only.
  let pending = null, frame = 0;
  function draw() {
    frame = 0;
    const data = pending;
    pending = null;
    if (data == null) return;
    const t0 = performance.now();
    snap = JSON.parse(data);
    const t1 = performance.now();
    record();
    const ms = measured(t0, { seq: snap.seq, parse: t1 - t0 });
    if (window.vmssOnRender) window.vmssOnRender(snap);
    $("#stats").textContent = `update #${snap.seq} · server ${snap.buildMs.toFixed(1)} ms · page ${ms.toFixed(1)} ms · ${new Date(snap.time).toLocaleTimeString()}`;
  }
  // measured draws the selected view and records, for benchmarks, the time
  // since t0 to the draw (script) and to its style and layout.
  function measured(t0, rec) {
    render();
    rec.ms = performance.now() - t0;
    void document.body.offsetHeight; // style and layout, which the browser would do next
    rec.layout = performance.now() - t0;
    rec.at = Date.now();
    window.vmssRenders.push(rec);
    if (window.vmssRenders.length > 1000) window.vmssRenders.shift();
    return rec.ms;
  }
  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("view", (ev) => {
      pending = ev.data;
      if (!frame) frame = requestAnimationFrame(draw);
    });
    es.onopen = () => { const c = $("#conn"); c.textContent = "live"; c.className = "pill live"; };
    es.onerror = () => { const c = $("#conn"); c.textContent = "reconnecting"; c.className = "pill off"; };
  }

  // record keeps time series for the charts: instances per scale set, requests per backend.
  function record() {
    const now = Date.parse(snap.time) / 1000;
    for (const g of snap.groups) {
      for (const ss of g.scaleSets) {
        let running = 0;
        for (const i of ss.instances) if (i.power === "running") running++;
        push("ss:" + ss.id.toLowerCase(), now, { instances: ss.instances.length, running: running });
        if (picked && picked.set === ss.id) {
          const i = ss.instances.find((x) => x.id === picked.id);
          if (i && i.cpu != null) pushCPU(picked.pts, now, i.cpu);
        }
      }
      for (const lb of g.loadBalancers) {
        const h = lb.health || {};
        const totals = {};
        for (const p of h.pools || []) for (const b of p.backends) totals[b.name] = b.totalConnections;
        const key = "lb:" + lb.id.toLowerCase();
        const prev = series[key] && series[key].last;
        const rates = {};
        for (const n in totals) {
          rates[n] = prev && prev.totals[n] != null && now > prev.t ? Math.max(0, (totals[n] - prev.totals[n]) / (now - prev.t)) : null;
        }
        push(key, now, rates);
        series[key].last = { t: now, totals: totals };
      }
    }
  }
  function push(key, t, values) {
    const s = series[key] || (series[key] = { t: [], cols: {} });
    if (s.t.length && t <= s.t[s.t.length - 1]) return;
    s.t.push(t);
    for (const n in values) if (!s.cols[n]) s.cols[n] = new Array(s.t.length - 1).fill(null);
    for (const n in s.cols) s.cols[n].push(values[n] == null ? null : values[n]);
    if (s.t.length > 600) { s.t.shift(); for (const n in s.cols) s.cols[n].shift(); }
  }
  function pushCPU(s, t, v) {
    if (s.t.length && t <= s.t[s.t.length - 1]) return;
    s.t.push(t); s.cols["%"].push(v);
    if (s.t.length > 600) { s.t.shift(); s.cols["%"].shift(); }
  }
  // put sets an element's HTML when it differs from what it holds.
  function put(id, html) {
    const el = document.getElementById(id);
    if (!el) return;
    if (drawn[id] === html && el.dataset.drawn === "1") return;
    el.innerHTML = html; drawn[id] = html; el.dataset.drawn = "1";
  }
  const palette = ["#4493f8", "#2ea043", "#d29922", "#da3633", "#a371f7", "#3fb950", "#f778ba", "#79c0ff", "#ffa657", "#56d4dd"];
  function chart(el, key, title, yLabel, given) {
    const s = given || series[key];
    if (!el || !s) return;
    const names = Object.keys(s.cols).sort();
    const data = [s.t].concat(names.map((n) => s.cols[n]));
    const sig = names.join(",");
    let c = charts[key];
    if (c && (c.sig !== sig || c.el !== el)) { c.plot.destroy(); c = null; }
    if (!c) {
      el.innerHTML = "";
      const plot = new uPlot({
        title: title, scales: yLabel === "%" ? {
          // the chart's whole span up to the latest view, however few points it has yet
          x: { time: true, range: () => { const end = Date.parse(snap.time) / 1000; return [end - (snap.cpuSpan || 120), end]; } },
          y: { range: (u, lo, hi) => [0, Math.max(10, Math.ceil((hi || 0) * 1.15))] } } : { x: { time: true } }, width: Math.min(760, Math.max(360, el.parentElement.clientWidth - 20)), height: 200,
        axes: [{ stroke: "#8393a5", grid: { stroke: "#263241" } }, { label: yLabel, stroke: "#8393a5", grid: { stroke: "#263241" } }],
        series: [{}].concat(names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, spanGaps: true }))),
      }, data, el);
      charts[key] = c = { plot: plot, sig: sig, el: el };
    } else {
      c.plot.setData(data);
    }
  }

  function find(kind, id) {
    for (const g of snap.groups) {
      if (kind === "rg" && g.name === id) return { g: g };
      for (const x of (kind === "ss" ? g.scaleSets : kind === "lb" ? g.loadBalancers : [])) if (x.id.toLowerCase() === id) return { g: g, x: x };
      if (kind === "dep") for (const d of g.deployments) if (g.name + "/" + d.name === id) return { g: g, x: d };
    }
    return null;
  }

  function render() {
    renderTree();
    const [kind, ...rest] = sel.split(":");
    const id = rest.join(":");
    const want = sel;
    if (skeleton !== want) { skeleton = want; page = 0; $("#main").innerHTML = `<div id="view"></div>`; }
    const v = $("#view");
    if (kind === "ss") return renderScaleSet(v, find("ss", id));
    if (kind === "lb") return renderLB(v, find("lb", id));
    if (kind === "dep") return renderDeployment(v, find("dep", id));
    if (kind === "rg") return renderGroup(v, find("rg", id));
    if (kind === "activity") return renderActivity(v, 300);
    if (kind === "whatif") return renderWhatIf(v, id);
    renderOverview(v);
  }

  function renderTree() {
    let h = `<a href="#overview" class="${sel === "overview" ? "sel" : ""}">Overview</a><a href="#activity" class="${sel === "activity" ? "sel" : ""}">Activity log</a><a href="#whatif" class="${sel.startsWith("whatif") ? "sel" : ""}">What-if / deploy</a>`;
    for (const g of snap.groups) {
      h += `<div class="rg"><a href="#rg:${esc(g.name)}" style="padding:0;display:inline">${esc(g.name)}</a> <span class="muted">${esc(g.location)}</span></div>`;
      const link = (k, label, key, extra) => `<a href="#${key}" class="${sel === key ? "sel" : ""}"><span class="k">${k}</span>${esc(label)}${extra || ""}</a>`;
      for (const ss of g.scaleSets) link && (h += link("vmss", ss.name, "ss:" + ss.id.toLowerCase(), ` <span class="muted">${ss.instances.length}</span>`));
      for (const vm of g.vms) h += link("vm", vm.name, "rg:" + g.name);
      for (const lb of g.loadBalancers) h += link("lb", lb.name, "lb:" + lb.id.toLowerCase());
      for (const vn of g.vnets) h += link("vnet", vn.name, "rg:" + g.name);
      for (const d of g.deployments) h += link("dep", d.name, "dep:" + g.name + "/" + d.name);
    }
    put("tree", h);
  }

  function renderOverview(v) {
    let h = `<h2>Overview</h2><table><tr><th>Resource group</th><th>Location</th><th class="num">Scale sets</th><th class="num">Instances</th><th class="num">VMs</th><th class="num">Load balancers</th><th class="num">VNETs</th><th class="num">Deployments</th></tr>`;
    for (const g of snap.groups) {
      const n = g.scaleSets.reduce((a, s) => a + s.instances.length, 0);
      h += `<tr><td><a href="#rg:${esc(g.name)}">${esc(g.name)}</a></td><td>${esc(g.location)}</td><td class="num">${g.scaleSets.length}</td><td class="num">${n}</td><td class="num">${g.vms.length}</td><td class="num">${g.loadBalancers.length}</td><td class="num">${g.vnets.length}</td><td class="num">${g.deployments.length}</td></tr>`;
    }
    if (!snap.groups.length) h += `<tr><td colspan="8" class="muted">No resource groups yet: try <code>sudo vmss create -n web</code>.</td></tr>`;
    v.innerHTML = h + `</table>` + activityTable(15);
  }

  function renderGroup(v, f) {
    if (!f) { v.innerHTML = `<p class="muted">Gone.</p>`; return; }
    const g = f.g;
    let h = `<h2>${esc(g.name)} <span class="muted">${esc(g.location)}</span></h2><h3>Scale sets</h3><table><tr><th>Name</th><th class="num">Capacity</th><th class="num">Instances</th><th>Size</th><th>Upgrade policy</th></tr>`;
    for (const ss of g.scaleSets) h += `<tr><td><a href="#ss:${esc(ss.id.toLowerCase())}">${esc(ss.name)}</a></td><td class="num">${ss.capacity}</td><td class="num">${ss.instances.length}</td><td>${esc(ss.size)}</td><td>${esc(ss.upgradePolicy)}</td></tr>`;
    h += `</table><h3>Virtual machines</h3><table><tr><th>Name</th><th>Size</th><th>Provisioning</th><th>Power</th></tr>`;
    for (const vm of g.vms) {
      const p = vm.properties || {}; const st = (p.instanceView && p.instanceView.statuses) || [];
      const pow = (st.find((s) => s.code && s.code.startsWith("PowerState/")) || {}).code;
      h += `<tr><td>${esc(vm.name)}</td><td>${esc(p.hardwareProfile && p.hardwareProfile.vmSize)}</td><td>${pill(p.provisioningState)}</td><td>${pill(pow && pow.slice(11))}</td></tr>`;
    }
    h += `</table><h3>Load balancers</h3><table><tr><th>Name</th><th class="num">Rules</th><th class="num">Backends</th></tr>`;
    for (const lb of g.loadBalancers) {
      const hp = lb.health || {};
      h += `<tr><td><a href="#lb:${esc(lb.id.toLowerCase())}">${esc(lb.name)}</a></td><td class="num">${(hp.rules || []).length}</td><td class="num">${(hp.pools || []).reduce((a, p) => a + p.backends.length, 0)}</td></tr>`;
    }
    h += `</table><h3>Virtual networks</h3><table><tr><th>Name</th><th>Address space</th><th>Subnets</th></tr>`;
    for (const vn of g.vnets) {
      const p = vn.properties || {};
      h += `<tr><td>${esc(vn.name)}</td><td class="mono">${esc(((p.addressSpace || {}).addressPrefixes || []).join(", "))}</td><td class="mono">${esc((p.subnets || []).map((s) => s.name + " " + ((s.properties || {}).addressPrefix || "")).join(", "))}</td></tr>`;
    }
    h += `</table><h3>Deployments</h3><table><tr><th>Name</th><th>State</th></tr>`;
    for (const d of g.deployments) h += `<tr><td><a href="#dep:${esc(g.name + "/" + d.name)}">${esc(d.name)}</a></td><td>${pill(d.state)}</td></tr>`;
    v.innerHTML = h + `</table>`;
  }

  function renderScaleSet(v, f) {
    if (!f) { v.innerHTML = `<p class="muted">This scale set is gone.</p>`; return; }
    const ss = f.x, key = "ss:" + ss.id.toLowerCase();
    if (!v.firstChild) {
      v.innerHTML = `<h2 id="ssname"></h2><div class="cards" id="sscards"></div>
        <div class="pager" id="scalebar"><label>Capacity <input type="number" min="0" id="cap"></label><button data-act="scale" id="scalebtn">Scale</button>
        <span class="muted">same call as <code>vmss scale --new-capacity N</code></span></div>
        <div class="row"><div><h3>Fault domains × update domains</h3><div id="grid"></div></div>
        <div><h3>Instances over time</h3><div class="chart"><div id="sschart"></div></div></div>
        <div><h3>Percentage CPU (average of instances)</h3><div class="chart"><div id="cpuchart"></div></div></div>
        <div id="instcpu" hidden><h3 id="instcputitle"></h3><div class="chart"><div id="instcpuchart"></div></div></div></div>
        <div id="autoscale"></div>
        <h3>Instances <span class="muted">(click an id for its CPU)</span></h3><div class="pager" id="pager"></div>
        <div id="insts"><table id="insttable"><thead><tr><th class="num">Id</th><th>Computer name</th><th>Private IP</th><th class="num">FD</th><th class="num">UD</th><th>Power</th><th>Provisioning</th><th>Health</th><th>Load balancer</th><th class="num">CPU %</th><th>Latest model</th><th>SSH (inbound NAT)</th><th>Actions</th></tr></thead><tbody id="instbody"></tbody></table></div>`;
      $("#cap").value = ss.capacity;
      rows.clear();
      for (const k in drawn) delete drawn[k];
    }
    put("ssname", `${esc(ss.name)} <span class="muted">${esc(f.g.name)}</span>`);
    let running = 0, up = 0;
    for (const i of ss.instances) { if (i.power === "running") running++; if (i.lb === "Up") up++; }
    const last = ss.cpu && ss.cpu.length ? ss.cpu[ss.cpu.length - 1][1] : null;
    const card = (l, val) => `<div class="card"><div class="l">${l}</div><div class="v">${val}</div></div>`;
    put("sscards", card("Capacity", `<span id="capacity">${ss.capacity}</span>`) + card("Instances", `<span id="count">${ss.instances.length}</span>`) +
      card("Running", running) + card("In rotation", up) + card("CPU", last == null ? `<span class="muted">—</span>` : `${last}%`) + card("Image", `<span class="mono">${esc(ss.image || "—")}</span>`) + card("Size", esc(ss.size)) +
      card("Upgrade policy", esc(ss.upgradePolicy || "Manual")) + card("Overprovision", ss.overprovision ? "on" : "off") + card("Provisioning", pill(ss.provisioningState)));
    // The FD × UD grid: one square per instance, coloured by its rotation state.
    let fds = 0, uds = 0;
    const cells = {};
    for (const i of ss.instances) {
      fds = Math.max(fds, i.fd + 1); uds = Math.max(uds, i.ud + 1);
      const k = i.fd + "/" + i.ud, st = stateOf(i);
      cells[k] = (cells[k] || "") + `<span class="dot ${esc(st)}" title="${esc(i.name)}: ${esc(st)}"></span>`;
    }
    // The grid's frame is rebuilt only when its shape changes, and each
    // cell only when its instances or their states do: scaling by one
    // instance redraws one cell, not a thousand squares.
    let gh = `<table class="grid"><tr><th></th>`;
    for (let u = 0; u < uds; u++) gh += `<th class="muted">UD ${u}</th>`;
    gh += `<th></th></tr>`;
    for (let d = 0; d < fds; d++) {
      gh += `<tr><th class="muted">FD ${d}</th>`;
      for (let u = 0; u < uds; u++) gh += `<td id="cell-${d}-${u}"></td>`;
      gh += `<td><button data-act="fault-down" data-fd="${d}" class="danger">down</button> <button data-act="fault-up" data-fd="${d}">up</button></td></tr>`;
    }
    put("grid", gh + `</table>`);
    for (let d = 0; d < fds; d++) for (let u = 0; u < uds; u++) put(`cell-${d}-${u}`, cells[d + "/" + u] || "");
    chart($("#sschart"), key, "", "instances");
    const cpu = { t: (ss.cpu || []).map((p) => p[0]), cols: { "average %": (ss.cpu || []).map((p) => p[1]) } };
    chart($("#cpuchart"), "cpu:" + key, "", "%", cpu);
    if (picked && picked.set === ss.id) {
      $("#instcpu").hidden = false;
      put("instcputitle", `Percentage CPU of ${esc(ss.name)}_${esc(picked.id)}`);
      chart($("#instcpuchart"), "picked:" + key, "", "%", picked.pts);
    } else $("#instcpu").hidden = true;
    put("autoscale", autoscaleView(ss.autoscale));
    const pages = Math.max(1, Math.ceil(ss.instances.length / PAGE));
    if (page >= pages) page = pages - 1;
    put("pager", `<button data-page="-1" ${page === 0 ? "disabled" : ""}>‹</button> page ${page + 1} of ${pages} (${ss.instances.length} instances) <button data-page="1" ${page >= pages - 1 ? "disabled" : ""}>›</button>`);
    // Keyed rows: a row is rebuilt only when what it shows changed, and
    // moved only when the order changed.
    const body = $("#instbody"), shown = ss.instances.slice(page * PAGE, page * PAGE + PAGE), keep = new Set();
    let prev = null;
    for (const i of shown) {
      const sig = i.computerName + "|" + i.privateIp + "|" + i.fd + "|" + i.ud + "|" + i.power + "|" + i.provisioningState + "|" + i.health + "|" + i.lb + "|" + i.cpu + "|" + i.latestModel + "|" + i.ssh + "|" + (picked && picked.id === i.id);
      let r = rows.get(i.id);
      if (!r) { r = { tr: document.createElement("tr"), sig: "", cells: [] }; r.tr.dataset.instance = i.id; rows.set(i.id, r); }
      if (r.sig !== sig) { redrawRow(r, i); r.tr.className = picked && picked.id === i.id ? "picked" : ""; r.sig = sig; }
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== r.tr) body.insertBefore(r.tr, want);
      prev = r.tr;
      keep.add(i.id);
    }
    for (const [id, r] of rows) if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
    v.dataset.id = ss.id;
    lockActions(v);
  }
  // redrawRow sets the cells of an instance's row that changed: a state
  // change of every instance rewrites one cell a row, not whole rows.
  function redrawRow(r, i) {
    const html = rowCells(i);
    if (r.cells.length !== html.length) {
      r.tr.innerHTML = html.map((h, k) => `<td${CELL_CLASS[k] ? ` class="${CELL_CLASS[k]}"` : ""}>${h}</td>`).join("");
      r.cells = html;
      return;
    }
    const tds = r.tr.children;
    for (let k = 0; k < html.length; k++) if (r.cells[k] !== html[k]) tds[k].innerHTML = html[k];
    r.cells = html;
  }
  const CELL_CLASS = ["num", "", "mono", "num", "num", "power", "", "", "lbstate", "num cpu", "", "", ""];
  function rowCells(i) {
    const a = (op, label, cls) => `<button data-act="${op}" data-inst="${esc(i.id)}" class="${cls || ""}">${label}</button>`;
    return [`<a href="javascript:void 0" data-pick="${esc(i.id)}">${esc(i.id)}</a>`, esc(i.computerName), esc(i.privateIp), String(i.fd), String(i.ud),
      pill(i.power), pill(i.provisioningState), pill(i.health), pill(i.lb), i.cpu == null ? `<span class="muted">—</span>` : i.cpu.toFixed(1),
      i.latestModel ? "yes" : `<span class="pill Draining">no</span>`,
      i.ssh ? `<span class="ssh"><code>${esc(i.ssh)}</code><button data-copy="${esc(i.ssh)}" title="copy">copy</button></span>` : `<span class="muted">—</span>`,
      `${i.power === "running" ? a("stop", "stop") : a("start", "start")} ${a("restart", "restart")} ${a("reimage", "reimage")} ${a("delete", "delete", "danger")}`];
  }
  function autoscaleView(d) {
    if (!d) return "";
    const act = d.current === d.new ? `no change (${d.current})` : `${d.current} → ${d.new}`;
    let h = `<h3>Autoscale</h3><div class="cards"><div class="card"><div class="l">Setting</div><div class="v">${esc(d.setting)}</div></div>
      <div class="card"><div class="l">Profile</div><div class="v">${esc(d.profile || "—")}</div></div>
      <div class="card"><div class="l">Min / default / max</div><div class="v">${d.min} / ${d.default} / ${d.max}</div></div>
      <div class="card"><div class="l">Last evaluation</div><div class="v">${esc(new Date(d.time).toLocaleTimeString())}: ${esc(act)}</div></div></div>
      <p id="asreason">${esc(d.reason)}</p><table id="asrules"><tr><th>Rule</th><th>Scale</th><th>Metric</th><th class="num">Value</th><th>Threshold</th><th>Fired</th><th>Cooldown</th></tr>`;
    d.rules.forEach((r, n) => {
      h += `<tr><td class="num">${n}</td><td>${r.direction === "Decrease" ? "in" : "out"}</td><td>${esc(r.aggregation)} ${esc(r.metric)} over ${esc(r.window)}</td>
        <td class="num">${r.hasData ? r.value : `<span class="muted">no data</span>`}</td><td>${esc(opSym(r.operator))} ${r.threshold}</td>
        <td>${r.met ? `<span class="pill Up">fired</span>` : `<span class="muted">no</span>`}</td><td>${r.inCooldown ? `<span class="pill Draining">cooling down</span>` : ""}</td></tr>`;
    });
    return h + `</table>`;
  }
  const opSym = (o) => ({ greaterthan: ">", greaterthanorequal: "≥", lessthan: "<", lessthanorequal: "≤", equals: "=", notequals: "≠" }[String(o).toLowerCase()] || o);
  function stateOf(i) {
    if (i.power && i.power !== "running") return i.power;
    return i.lb || i.provisioningState || "Unknown";
  }

  function renderLB(v, f) {
    if (!f) { v.innerHTML = `<p class="muted">This load balancer is gone.</p>`; return; }
    const lb = f.x, h0 = lb.health || {}, m = (lb.model && lb.model.properties) || {};
    if (!v.firstChild) v.innerHTML = `<h2 id="lbname"></h2><div id="lbtables"></div><h3>Requests per second per backend</h3><div class="chart"><div id="lbchart"></div></div><div id="lbmore"></div>`;
    $("#lbname").innerHTML = `${esc(lb.name)} <span class="muted">${esc(f.g.name)}</span>`;
    let h = `<h3>Rules</h3><table><tr><th>Rule</th><th>Frontend</th><th class="num">Backend port</th><th>Probe</th><th>Distribution</th><th class="num">Active</th><th class="num">Total</th><th class="num">Refused</th></tr>`;
    for (const r of h0.rules || []) h += `<tr><td>${esc(r.name)}</td><td class="mono">${esc(r.frontend)}</td><td class="num">${r.backendPort}</td><td>${esc(r.probe)}</td><td>${esc(r.loadDistribution)}</td><td class="num">${r.activeConnections}</td><td class="num">${r.totalConnections}</td><td class="num">${r.refused}</td></tr>`;
    h += `</table><h3>Probes</h3><table><tr><th>Probe</th><th>Protocol</th><th class="num">Port</th><th>Path</th><th class="num">Interval (s)</th><th class="num">Threshold</th></tr>`;
    for (const p of m.probes || []) { const q = p.properties || {}; h += `<tr><td>${esc(p.name)}</td><td>${esc(q.protocol)}</td><td class="num">${esc(q.port)}</td><td class="mono">${esc(q.requestPath || "")}</td><td class="num">${esc(q.intervalInSeconds)}</td><td class="num">${esc(q.probeThreshold || q.numberOfProbes || "")}</td></tr>`; }
    h += `</table><h3>Backends</h3><table id="backends"><tr><th>Pool</th><th>Backend</th><th>Address</th><th>State</th><th>Last probe result</th><th class="num">Active conns</th><th class="num">Total conns</th><th class="num">Failed</th><th class="num">Bytes in</th><th class="num">Bytes out</th></tr>`;
    for (const p of h0.pools || []) for (const b of p.backends) {
      const pr = (b.probes || []).map((x) => `${esc(x.probe)}: ${esc(x.lastResult || "—")}`).join("; ");
      h += `<tr data-backend="${esc(b.name)}"><td>${esc(p.name)}</td><td>${esc(b.name)}</td><td class="mono">${esc(b.address)}</td><td>${pill(b.state)}</td><td class="mono">${pr || "—"}</td><td class="num">${b.activeConnections}</td><td class="num">${b.totalConnections}</td><td class="num">${b.failedConnects}</td><td class="num">${bytes(b.bytesIn)}</td><td class="num">${bytes(b.bytesOut)}</td></tr>`;
    }
    h += `</table>`;
    $("#lbtables").innerHTML = h;
    let n = `<h3>Inbound NAT</h3><table><tr><th>Name</th><th>Frontend</th><th>Backend</th><th class="num">Active</th><th class="num">Total</th></tr>`;
    for (const x of h0.nat || []) n += `<tr><td>${esc(x.name)}</td><td class="mono">${esc(x.frontend)}</td><td class="mono">${esc(x.backend)}</td><td class="num">${x.activeConnections}</td><td class="num">${x.totalConnections}</td></tr>`;
    $("#lbmore").innerHTML = n + `</table>`;
    chart($("#lbchart"), "lb:" + lb.id.toLowerCase(), "", "req/s");
  }

  function renderDeployment(v, f) {
    if (!f) { v.innerHTML = `<p class="muted">This deployment is gone.</p>`; return; }
    const d = f.x;
    let h = `<h2>${esc(d.name)} ${pill(d.state)}</h2><p><a href="#whatif:${esc(f.g.name + "/" + d.name)}">What-if a new template for this deployment</a></p>`;
    if (d.error) h += `<h3>Error</h3><pre>${esc(JSON.stringify(d.error, null, 2))}</pre>`;
    h += `<h3>Operations</h3><table><tr><th>Resource</th><th>Type</th><th>Operation</th><th>State</th><th>Status</th></tr>`;
    for (const o of ((d.operations || {}).value || [])) {
      const p = o.properties || {}, t = p.targetResource || {};
      h += `<tr><td>${esc(t.resourceName || "")}</td><td>${esc(t.resourceType || "")}</td><td>${esc(p.provisioningOperation || "")}</td><td>${pill(p.provisioningState)}</td><td class="mono">${esc(p.statusMessage ? JSON.stringify(p.statusMessage).slice(0, 200) : p.statusCode || "")}</td></tr>`;
    }
    v.innerHTML = h + `</table>`;
  }

  // The what-if view: a template pasted or uploaded, previewed with the
  // ARM what-if call (az deployment group what-if), then deployed.
  function renderWhatIf(v, id) {
    const [g0, n0] = (id || "").split("/");
    if (!v.firstChild) {
      v.innerHTML = `<h2>What-if / deploy a template</h2>
        <p class="muted">Preview what a template would create, modify or delete (<code>vmss deployment what-if</code>), then deploy it.</p>
        <div class="form"><label>Resource group <input id="wigroup" list="wigroups" value="${esc(g0 || "default")}"></label><datalist id="wigroups"></datalist>
        <label>Deployment <input id="winame" list="winames" value="${esc(n0 || "dashboard")}"></label><datalist id="winames"></datalist>
        <label>Mode <select id="wimode"><option>Incremental</option><option>Complete</option></select></label></div>
        <div class="row"><div class="grow"><h3>Template <input type="file" id="wifile" accept=".json,application/json"></h3><textarea id="witemplate" spellcheck="false" placeholder="Paste an ARM template (azuredeploy.json) or choose a file"></textarea></div>
        <div class="grow"><h3>Parameters <input type="file" id="wipfile" accept=".json,application/json"></h3><textarea id="wiparams" spellcheck="false" placeholder='optional: {"name": {"value": ...}} or a parameters file'></textarea></div></div>
        <div class="pager"><button id="wirun" data-wi="whatif">What-if</button><button id="wideploy" data-wi="deploy" class="danger">Deploy</button><span id="wistatus" class="muted"></span></div>
        <div id="wiresult"></div>`;
      for (const [f, t] of [["#wifile", "#witemplate"], ["#wipfile", "#wiparams"]]) {
        $(f).addEventListener("change", (ev) => { const file = ev.target.files[0]; if (file) file.text().then((x) => { $(t).value = x; }); });
      }
      if (snap.readOnly) { $("#wideploy").disabled = true; $("#wideploy").title = "read-only dashboard"; }
    }
    put("wigroups", snap.groups.map((g) => `<option value="${esc(g.name)}">`).join(""));
    const g = snap.groups.find((x) => x.name === $("#wigroup").value);
    put("winames", g ? g.deployments.map((d) => `<option value="${esc(d.name)}">`).join("") : "");
  }
  async function whatIf(deploy) {
    let template, parameters;
    try { template = JSON.parse($("#witemplate").value); } catch (e) { toast("the template is not JSON: " + e.message, true); return; }
    try { parameters = $("#wiparams").value.trim() ? JSON.parse($("#wiparams").value) : null; } catch (e) { toast("the parameters are not JSON: " + e.message, true); return; }
    const body = { resourceGroup: $("#wigroup").value.trim(), name: $("#winame").value.trim(), mode: $("#wimode").value, template: template, parameters: parameters };
    $("#wistatus").textContent = deploy ? "deploying…" : "asking what-if…";
    const r = await fetch(deploy ? "/api/deploy" : "/api/whatif", { method: "POST", headers: { "Content-Type": "application/json", "X-Vmss-Token": token }, body: JSON.stringify(body) });
    const text = await r.text();
    $("#wistatus").textContent = "";
    let ans = null; try { ans = JSON.parse(text); } catch (e) { /* a plain-text error */ }
    if (!r.ok) {
      const msg = ans && ans.error ? `${ans.error.code}: ${ans.error.message}` : text;
      $("#wiresult").innerHTML = `<p class="err" id="wierror">${esc((deploy ? "Deployment" : "What-if") + " failed (" + r.status + "): " + msg)}</p>`;
      return;
    }
    if (deploy) { toast("deployment started"); location.hash = "#dep:" + body.resourceGroup + "/" + body.name; return; }
    $("#wiresult").innerHTML = changeList(((ans.properties || {}).changes) || []);
  }
  const changeSym = { Create: "+", Delete: "−", Modify: "~", NoChange: "=", Ignore: "×", Deploy: "!" };
  const show = (x) => x === undefined ? `<span class="muted">—</span>` : `<code>${esc(typeof x === "string" ? x : JSON.stringify(x))}</code>`;
  function changeList(changes) {
    const count = {};
    for (const c of changes) count[c.changeType] = (count[c.changeType] || 0) + 1;
    let h = `<h3>Result</h3><p id="wisummary">${["Create", "Modify", "Delete", "NoChange", "Ignore"].filter((k) => count[k]).map((k) => `<span class="pill ch-${k}">${count[k]} ${k === "NoChange" ? "no change" : k.toLowerCase()}</span>`).join(" ") || "No resources."}</p><div id="wichanges">`;
    for (const c of changes) {
      const rid = c.resourceId || "", m = rid.match(/providers\/(.+)$/);
      const typeName = m ? m[1].split("/") : [rid];
      const name = typeName.filter((_, i) => i >= 2 && i % 2 === 0).join("/") || rid;
      const type = typeName.filter((_, i) => i < 2 || i % 2 === 1).join("/");
      h += `<div class="change ch-${esc(c.changeType)}" data-change="${esc(c.changeType)}" data-resource="${esc(name)}"><div class="head"><span class="sym">${changeSym[c.changeType] || "?"}</span> <b>${esc(name)}</b> <span class="muted">${esc(type)}</span> <span class="pill ch-${esc(c.changeType)}">${esc(c.changeType)}</span>${c.unsupportedReason ? ` <span class="muted">${esc(c.unsupportedReason)}</span>` : ""}</div>`;
      if (c.delta && c.delta.length) {
        h += `<table class="delta"><tr><th></th><th>Property</th><th>Before</th><th>After</th></tr>`;
        for (const d of c.delta) h += `<tr class="p-${esc(d.propertyChangeType)}"><td class="sym">${changeSym[d.propertyChangeType] || (d.propertyChangeType === "Array" ? "~" : "")}</td><td class="mono">${esc(d.path)}</td><td>${show(d.before)}</td><td>${show(d.after)}</td></tr>`;
        h += `</table>`;
      } else if (c.changeType === "Create" && c.after) {
        h += `<details><summary>properties</summary><pre>${esc(JSON.stringify(c.after.properties || c.after, null, 2))}</pre></details>`;
      }
      h += `</div>`;
    }
    return h + `</div>`;
  }

  function activityTable(n) {
    let h = `<h3>Activity</h3><table class="log"><tr><th>Time</th><th>Kind</th><th>Subject</th><th>What</th></tr>`;
    const a = snap.activity || [];
    for (const e of a.slice(-n).reverse()) h += `<tr><td class="mono">${esc(new Date(e.time).toLocaleTimeString())}</td><td>${esc(e.kind)}</td><td>${esc(e.subject)}</td><td>${esc(e.text)}</td></tr>`;
    if (!a.length) h += `<tr><td colspan="4" class="muted">Nothing yet.</td></tr>`;
    return h + `</table>`;
  }
  function renderActivity(v, n) { v.innerHTML = `<h2>Activity log</h2>` + activityTable(n); }

  function lockActions(root) {
    if (!snap.readOnly) return;
    $("#ro").hidden = false;
    root.querySelectorAll("button[data-act]").forEach((b) => { b.disabled = true; b.title = "read-only dashboard"; });
    const c = $("#cap"); if (c) c.disabled = true;
  }

  function toast(msg, err) {
    const t = $("#toast");
    t.textContent = msg; t.className = err ? "err" : ""; t.hidden = false;
    clearTimeout(toast.t); toast.t = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function act(body) {
    const r = await fetch("/api/action", { method: "POST", headers: { "Content-Type": "application/json", "X-Vmss-Token": token }, body: JSON.stringify(body) });
    const text = await r.text();
    if (r.ok) toast(`${body.op} accepted`);
    else toast(`${body.op} failed (${r.status}): ${text.slice(0, 300)}`, true);
  }

  document.addEventListener("click", (ev) => {
    const p = ev.target.closest("a[data-pick]");
    if (p) { ev.preventDefault(); pick($("#view").dataset.id, p.dataset.pick); return; }
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.copy) { navigator.clipboard && navigator.clipboard.writeText(b.dataset.copy).then(() => toast("copied: " + b.dataset.copy)); return; }
    if (b.dataset.page) { page += Number(b.dataset.page); render(); return; }
    if (b.dataset.wi) { if (b.dataset.wi === "whatif" || confirm("Deploy this template?") || ev.shiftKey) whatIf(b.dataset.wi === "deploy"); return; }
    const op = b.dataset.act;
    if (!op) return;
    const id = $("#view").dataset.id;
    const body = { op: op, scaleSet: id };
    if (b.dataset.inst) body.instance = b.dataset.inst;
    if (b.dataset.fd) body.faultDomain = Number(b.dataset.fd);
    if (op === "scale") body.capacity = Number($("#cap").value);
    if ((op === "delete" || op === "reimage") && !ev.shiftKey && !confirm(`${op} instance ${body.instance}?`)) return;
    act(body);
  });
  // pick charts one instance's CPU: its history from the metrics API, then
  // each live update's value.
  function pick(set, id) {
    if (picked && picked.set === set && picked.id === id) { picked = null; render(); return; } // a second click hides it
    for (const k in charts) if (k.startsWith("picked:")) { charts[k].plot.destroy(); delete charts[k]; }
    const mine = picked = { set: set, id: id, pts: { t: [], cols: { "%": [] } } };
    render();
    fetch("/api/cpu?scaleSet=" + encodeURIComponent(set) + "&instance=" + encodeURIComponent(id)).then((r) => r.json()).then((hist) => {
      if (picked !== mine) return;
      const live = mine.pts, merged = { t: [], cols: { "%": [] } };
      for (const [t, v] of hist) if (!live.t.length || t < live.t[0]) { merged.t.push(t); merged.cols["%"].push(v); }
      mine.pts = { t: merged.t.concat(live.t), cols: { "%": merged.cols["%"].concat(live.cols["%"]) } };
      if (snap) render();
    });
  }
  window.addEventListener("hashchange", () => { sel = location.hash.slice(1) || "overview"; if (snap) measured(performance.now(), { seq: snap.seq, view: sel }); });
  if (document.querySelector('meta[name="vmss-readonly"]').content === "true") $("#ro").hidden = false;
  connect();
})();
