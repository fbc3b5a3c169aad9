/* The microseg service-graph page: plain browser JavaScript over the JSON API (docs/api.md), drawn with
 * sigma (WebGL) on a graphology graph. Positions come from the server, so the page runs no layout. */
/* global document, window, sessionStorage, navigator, fetch, performance, URLSearchParams, setTimeout, clearTimeout, graphology, Sigma */
'use strict';

(function () {
  const KIND_STYLE = {
    world: { color: '#8c8c8c', shape: 'diamond', name: 'internet address' },
    private: { color: '#b0b0b0', shape: 'diamond', name: 'private address' },
    node: { color: '#5b5b5b', shape: 'square', name: 'cluster node' },
    'kube-apiserver': { color: '#1f2328', shape: 'square', name: 'API server' },
    unknown: { color: '#c9c9c9', shape: 'triangle', name: 'unknown peer' },
    group: { color: '#9a9a9a', shape: 'diamond', name: 'peers (grouped)' },
  };
  const ISOLATED_COLOR = '#a40e26';
  const EDGE_COLOR = '#c7ccd1';
  const EDGE_DROPPED = '#f0b4b4';
  const EDGE_BLOCKED = '#e11d48';
  const DIM_NODE = '#e4e6e9';
  const DIM_EDGE = '#eef0f2';

  const state = {
    token: sessionStorage.getItem('microseg.token') || '',
    info: null,
    view: null,
    graph: null,
    renderer: null,
    segments: new Map(),
    expanded: new Set(),
    viewMode: 'auto',
    audit: null,
    audits: [],
    isolations: [],
    selected: null,
    selectedEdge: null,
    filter: { namespace: '', segment: '' },
    onDemand: new Set(),
    renderMs: null,
    ready: false,
  };
  window.microseg = state;

  const $ = (id) => document.getElementById(id);

  function esc(s) {
    return String(s ?? '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;');
  }

  /**
   * Whether an isolation cuts pods off now (as the server's isolationInEffect): Isolated or Leaking, or
   * Pending with pods isolated already; a Pending one with none (not reconciled yet, a dry run, no pod
   * to isolate) cuts nothing off.
   */
  function isolationInEffect(i) {
    if (i.state === 'Released' || i.state === 'Failed') return false;
    return i.state === 'Isolated' || i.state === 'Leaking' || i.pods.length > 0;
  }

  function time(iso) {
    if (!iso) return '';
    return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function status(text) {
    $('status').textContent = text;
  }

  /** The message of a failed request (the server's `error`), for showing where the user acted. */
  function errorText(err) {
    return err && err.message ? err.message : String(err);
  }

  // Views rendered into the panel one after another: a slow answer for one the user has left (another
  // node clicked, another tab) must not replace what is shown now.
  let panelSeq = 0;
  function claimPanel() {
    panelSeq += 1;
    return panelSeq;
  }
  function ownsPanel(seq) {
    return seq === panelSeq;
  }

  /**
   * The outcome of an Isolate or Release whose details are no longer shown (the user moved on before
   * the answer): below the status line, until the next action or a click on it.
   */
  function actionNote(text, failed) {
    const el = $('action-note');
    el.textContent = text;
    el.className = failed ? 'error' : '';
    el.hidden = !text;
  }

  function showPanelError(what, err) {
    $('panel-body').innerHTML =
      `<p class="error" role="alert" id="panel-error">${esc(what)}: ${esc(errorText(err))}</p>` +
      '<p class="muted">The rest of the page still works: click a node or a tab to go on.</p>';
  }

  // ---------------- API ----------------
  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    const sent = options.withoutToken ? '' : state.token;
    if (sent) headers.Authorization = `Bearer ${sent}`;
    // `raw`: text sent as it is (YAML or JSON the user gave); `body`: a value sent as JSON.
    if (options.raw !== undefined) headers['Content-Type'] = 'application/yaml';
    else if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(`api/v1${path}`, {
        method: options.method || 'GET',
        headers,
        body:
          options.raw !== undefined
            ? options.raw
            : options.body === undefined
              ? undefined
              : JSON.stringify(options.body),
      });
    } catch (err) {
      throw new Error(`cannot reach the server (${errorText(err)})`, { cause: err });
    }
    if (res.status === 401 && !options.withoutToken) {
      // Signed in with another token meanwhile: try that one. Else ask; a user who closes the dialog
      // gets the refusal where they acted, like any failed request.
      if (state.token !== sent || (await login(Boolean(sent)))) return api(path, options);
      // Closed after a token was refused (rotated): it is forgotten, and the request sent once more
      // without it, as a server that lets anyone read (anonymousRead) takes it; another refuses it again.
      if (sent) {
        if (state.token === sent) {
          state.token = '';
          sessionStorage.removeItem('microseg.token');
        }
        return api(path, Object.assign({}, options, { withoutToken: true }));
      }
    }
    if (res.status === 204) return null;
    // A proxy in between may answer with HTML or nothing: say what came back instead of a parse error.
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const message = body && typeof body.error === 'string' ? body.error : 'no error message';
      throw new Error(`${message} (HTTP ${res.status})`);
    }
    if (body === undefined) throw new Error(`the server answered HTTP ${res.status} without JSON`);
    return body;
  }

  /**
   * Asks for the token; resolves true once the user signed in, false when they closed the dialog
   * (Escape). Requests refused while the dialog is open wait for the same answer. `refused`: the token
   * sent was refused, which the dialog says.
   */
  let signingIn = null;
  function login(refused) {
    if (signingIn) return signingIn;
    signingIn = new Promise((resolve) => {
      const dlg = $('login');
      const done = (ok) => {
        signingIn = null;
        resolve(ok);
      };
      $('login-form').onsubmit = () => {
        state.token = $('login-token').value.trim();
        sessionStorage.setItem('microseg.token', state.token);
        done(true);
      };
      dlg.oncancel = () => done(false);
      $('login-note').textContent = refused ? 'The token was refused: enter the current one.' : '';
      $('login-note').hidden = !refused;
      if (!dlg.open) dlg.showModal();
    });
    return signingIn;
  }

  // ---------------- graph ----------------
  function nodeStyle(n) {
    const seg = n.segment ? state.segments.get(n.segment) : undefined;
    const base = KIND_STYLE[n.kind];
    let color = base ? base.color : seg ? seg.color : '#6e7781';
    let shape = base ? base.shape : 'circle';
    if (n.kind === 'workload' && n.roles && n.roles.includes('cluster-dns')) shape = 'triangle';
    if (n.kind === 'segment') shape = 'circle';
    if (n.isolated && n.kind === 'workload') color = ISOLATED_COLOR;
    const flows = Math.max(0, n.flows || 0);
    let size = 8 + 5 * Math.log10(1 + flows);
    if (n.kind === 'segment' || n.kind === 'group') size = 12 + 8 * Math.log10(1 + (n.members || 1));
    return { color, shape, size: Math.min(size, 44) };
  }

  function nodeLabel(n) {
    let label = n.label;
    if (n.isolated) label += n.kind === 'workload' ? ' [isolated]' : ` [${n.isolated} isolated]`;
    if (n.isolationPending)
      label += n.kind === 'workload' ? ' [isolation pending]' : ` [${n.isolationPending} isolation pending]`;
    return label;
  }

  function edgeStyle(e) {
    if (e.blocked) return { color: EDGE_BLOCKED, size: 4 + Math.log10(1 + e.blocked) };
    return { color: e.dropped ? EDGE_DROPPED : EDGE_COLOR, size: 1.5 + 1.2 * Math.log10(1 + e.count) };
  }

  /** Above this many edges, edge labels are left out: sigma lays out every label text it is given. */
  const EDGE_LABEL_LIMIT = 1500;

  /**
   * At most this many edges are drawn: the (software) WebGL fill of tens of thousands of long edges
   * froze the tab for tens of seconds at 20,000 workloads (docs/web.md, Large graphs). Above it, the
   * edges with the most flows are drawn (those the rollout would block first), every node still is, and
   * a note says how many are not; a namespace or segment filter draws all of its edges up to the limit,
   * and a node selected draws all of its own (drawEdgesOf).
   */
  const EDGE_DRAW_LIMIT = 10000;

  /** Whether the namespace and segment filters hide a node (its graph attributes). */
  function hiddenByFilter(a) {
    const { namespace, segment } = state.filter;
    let hidden = false;
    if (namespace && a.kind !== 'segment' && a.kind !== 'group' && a.kind !== 'kube-apiserver') {
      hidden = a.namespace !== namespace;
    }
    if (namespace && a.kind === 'segment') {
      const s = state.segments.get(a.segment);
      hidden = !(s && s.namespaces.includes(namespace));
    }
    if (segment && a.segment !== segment) hidden = true;
    return hidden;
  }

  /** Blocked first, then more flows, then by id: the same edges are chosen on every draw. */
  function heavierFirst(a, b) {
    return (
      (b.blocked || 0) - (a.blocked || 0) || b.count - a.count || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    );
  }

  /**
   * The graph to draw: every node (those the filters hide hidden) and the edges. Up to EDGE_DRAW_LIMIT
   * edges, all of them, hidden where an end is; above it, only edges whose both ends are shown, the
   * EDGE_DRAW_LIMIT heaviest of them. `state.edgeCap` says what was left out, for the note.
   */
  function buildGraph(view) {
    const edgeLabels = view.edges.length <= EDGE_LABEL_LIMIT;
    const capped = view.edges.length > EDGE_DRAW_LIMIT;
    const g = new graphology.Graph({ type: 'directed', multi: false, allowSelfLoops: false });
    for (const n of view.nodes) {
      const s = nodeStyle(n);
      g.addNode(n.id, {
        x: n.x,
        y: n.y,
        size: s.size,
        color: s.color,
        baseColor: s.color,
        shape: s.shape,
        label: nodeLabel(n),
        kind: n.kind,
        namespace: n.namespace || '',
        segment: n.segment || '',
        hidden: false,
        dim: false,
        data: n,
      });
      g.setNodeAttribute(n.id, 'hidden', hiddenByFilter(g.getNodeAttributes(n.id)));
    }
    const hiddenEnd = (e) => g.getNodeAttribute(e.source, 'hidden') || g.getNodeAttribute(e.target, 'hidden');
    let edges = view.edges.filter((e) => g.hasNode(e.source) && g.hasNode(e.target));
    state.edgeCap = null;
    if (capped) {
      edges = edges.filter((e) => !hiddenEnd(e));
      if (edges.length > EDGE_DRAW_LIMIT) {
        const of = edges.length;
        edges = edges.slice().sort(heavierFirst).slice(0, EDGE_DRAW_LIMIT);
        // Of the rollout's, those that would be blocked come first: the note says how many.
        state.edgeCap = { drawn: EDGE_DRAW_LIMIT, of, blocked: edges.filter((e) => e.blocked).length };
      }
    }
    for (const e of edges)
      g.addDirectedEdgeWithKey(e.id, e.source, e.target, edgeAttributes(e, edgeLabels, hiddenEnd(e)));
    return g;
  }

  /** The attributes of edge `e` in the graph drawn (`edgeLabels`: its label too, as a blocked one's). */
  function edgeAttributes(e, edgeLabels, hidden) {
    const s = edgeStyle(e);
    return {
      size: s.size,
      color: s.color,
      baseColor: s.color,
      label:
        edgeLabels || e.blocked
          ? `${e.ports.join(', ')} · ${e.count} flows${e.viaService ? ` (${e.viaService} shared)` : ''}${e.blocked ? ` · ${e.blocked} would be blocked` : ''}`
          : undefined,
      hidden,
      dim: false,
      blocked: e.blocked || 0,
      data: e,
    };
  }

  /**
   * Above EDGE_DRAW_LIMIT, the node selected draws every connection of its between nodes shown, those
   * the limit left out too (`state.onDemand`); they go once another node is selected or none is.
   */
  function drawEdgesOf(nodeId) {
    const g = state.graph;
    for (const e of state.onDemand) {
      if (nodeId !== null && (g.source(e) === nodeId || g.target(e) === nodeId)) continue;
      g.dropEdge(e);
      state.onDemand.delete(e);
    }
    if (nodeId === null || state.view.edges.length <= EDGE_DRAW_LIMIT) return;
    const shown = (n) => g.hasNode(n) && !g.getNodeAttribute(n, 'hidden');
    const edgeLabels = state.view.edges.length <= EDGE_LABEL_LIMIT;
    for (const e of state.view.edges) {
      if (e.source !== nodeId && e.target !== nodeId) continue;
      if (g.hasEdge(e.id) || !shown(e.source) || !shown(e.target)) continue;
      g.addDirectedEdgeWithKey(e.id, e.source, e.target, edgeAttributes(e, edgeLabels, false));
      state.onDemand.add(e.id);
    }
  }

  function sigmaOptions() {
    const R = Sigma.rendering;
    return {
      primitives: {
        nodes: { shapes: [R.sdfCircle(), R.sdfSquare(), R.sdfDiamond(), R.sdfTriangle()] },
        edges: { extremities: [R.extremityArrow()], defaultHead: 'arrow' },
      },
      styles: {
        nodes: [
          Sigma.DEFAULT_STYLES.nodes,
          {
            shape: { attribute: 'shape', defaultValue: 'circle' },
            color: (a) => (a.dim ? DIM_NODE : a.color),
            visibility: (a, s) => (a.hidden || s.isHidden ? 'hidden' : 'visible'),
            labelVisibility: (a, s) =>
              s.isHovered || s.isHighlighted || a.focus ? 'visible' : a.dim ? 'hidden' : 'auto',
          },
        ],
        edges: [
          Sigma.DEFAULT_STYLES.edges,
          {
            color: (a) => (a.dim ? DIM_EDGE : a.color),
            visibility: (a, s) => (a.hidden || s.isHidden ? 'hidden' : 'visible'),
            labelVisibility: (a, s) => (s.isHovered || a.focus ? 'visible' : 'hidden'),
          },
        ],
      },
      settings: {
        renderEdgeLabels: true,
        enableEdgeEvents: true,
        hideEdgesOnMove: true,
        labelDensity: 0.6,
        labelRenderedSizeThreshold: 8,
        itemSizesReference: 'screen',
        stagePadding: 40,
      },
    };
  }

  // Graph requests one after another (a view chosen, a segment expanded, the rollout's audit, a refresh
  // after an action) ask with the choices as they are then; only the latest may draw, speak on the
  // status line or put the choices back.
  let graphSeq = 0;
  /** The choices the graph on screen was drawn with. */
  let drawn = { viewMode: 'auto', expanded: [], audit: null };

  /**
   * Draws the graph for the current choices (view, expanded segments, audit). Resolves true once drawn
   * and false when a newer graph request took over (then it changes nothing); when it fails and is
   * still the latest, the status line says why, the choices go back to those of the graph still drawn,
   * and it throws.
   */
  async function loadGraph() {
    graphSeq += 1;
    const seq = graphSeq;
    const asked = { viewMode: state.viewMode, expanded: [...state.expanded], audit: state.audit };
    const params = new URLSearchParams({ view: asked.viewMode });
    if (asked.expanded.length) params.set('expand', [...asked.expanded].sort().join(','));
    if (asked.audit) params.set('audit', asked.audit);
    status('Loading graph…');
    const tf = performance.now();
    let view;
    try {
      view = await api(`/graph?${params}`);
    } catch (err) {
      if (seq !== graphSeq) return false;
      state.viewMode = drawn.viewMode;
      state.expanded = new Set(drawn.expanded);
      state.audit = drawn.audit;
      $('view-mode').value = drawn.viewMode;
      status(`Could not load the graph: ${errorText(err)}`);
      throw err;
    }
    if (seq !== graphSeq) return false;
    drawn = asked;
    state.fetchMs = Math.round(performance.now() - tf);
    state.view = view;
    state.segments = new Map(view.segments.map((s) => [s.id, s]));
    fillFilters(view);
    drawLegend(view);
    redraw();
    showUnobservedCount(view.totals.unobserved || 0);
    document.body.dataset.nodes = String(state.graph.order);
    return true;
  }

  /**
   * Draws state.view again (built apart, as the filters are now) and says on the status line what is
   * drawn: the edges too when EDGE_DRAW_LIMIT left some out.
   */
  function redraw() {
    const view = state.view;
    const t0 = performance.now();
    drawGraph(buildGraph(view));
    state.renderMs = Math.round(performance.now() - t0);
    const agg = view.view === 'segments' ? ` · grouped by segment (${view.expanded.length} expanded)` : '';
    const c = state.edgeCap;
    const edges = c ? ` and ${c.drawn} of ${c.of} edges` : '';
    status(
      `${view.totals.nodes} nodes · ${view.totals.edges} edges · ${view.totals.flows} flows${agg} · drawn ${state.graph.order} nodes${edges} in ${state.renderMs} ms`,
    );
  }

  /**
   * Gives sigma a graph built apart (filters and the rollout's highlight set on it first): sigma indexes
   * it once, where filling the graph it draws made it process every node and edge as it was added, and
   * again for the full refresh.
   */
  function drawGraph(g) {
    state.graph = g;
    state.onDemand = new Set();
    highlightBlocked();
    if (!state.renderer) {
      state.renderer = new Sigma(g, $('graph'), sigmaOptions());
      bindRenderer(state.renderer);
    } else {
      // sigma 4.0.4's setGraph leaves its index of parallel edges on the first graph it drew, so an edge
      // added to this one later (drawEdgesOf) threw "Graph.source: could not find the ... edge".
      if (state.renderer.edgeGroups) state.renderer.edgeGroups.graph = g;
      state.renderer.setGraph(g);
    }
    showEdgeCap();
  }

  /** The note on the graph when not every edge is drawn (EDGE_DRAW_LIMIT): how many, and how to see them. */
  function showEdgeCap() {
    const el = $('edges-note');
    const c = state.edgeCap;
    el.hidden = !c;
    if (!c) return;
    const n = (x) => x.toLocaleString('en-US');
    const which = !c.blocked
      ? `the ${n(c.drawn)} connections with the most flows of ${n(c.of)}`
      : c.blocked < c.drawn
        ? `the ${n(c.blocked)} connections that would be blocked and the ${n(c.drawn - c.blocked)} others with the most flows, of ${n(c.of)}`
        : `the ${n(c.drawn)} connections with the most flows that would be blocked, of ${n(c.of)}`;
    el.textContent =
      `Drawn: ${which}; ${n(c.of - c.drawn)} are not drawn. ` +
      'Filter by namespace or segment to draw all of theirs; a node clicked draws all of its.';
  }

  function bindRenderer(r) {
    r.on('clickNode', ({ node }) => {
      void onNodeClick(node).catch((err) => status(`Error: ${errorText(err)}`));
    });
    r.on('clickEdge', ({ edge }) => {
      showEdge(edge);
    });
    r.on('clickStage', () => {
      clearFocus();
    });
  }

  async function onNodeClick(id) {
    const a = state.graph.getNodeAttributes(id);
    if (a.kind === 'segment') {
      state.expanded.add(a.segment);
      // On failure the status line says why, and the segment stays collapsed as drawn.
      await loadGraph().catch(() => undefined);
      return;
    }
    if (a.kind === 'group') {
      showGroup(id, a.data);
      return;
    }
    await selectNode(id);
  }

  /** A group of peers (the grouped view): no node of the graph has its details, so say what it is. */
  function showGroup(id, n) {
    claimPanel();
    state.selected = id;
    setFocus(id);
    const style = KIND_STYLE[id.slice('group:'.length)];
    const name = style ? style.name : 'peer';
    const members = n.members || 0;
    const what = `${members} ${name}${members === 1 ? '' : name.endsWith('s') ? 'es' : 's'}`;
    $('panel-body').innerHTML =
      `<h2 id="details-title">${esc(nodeLabel(n))}</h2>` +
      `<p id="group-details">${esc(what)}, drawn as one node in the grouped view; choose "Every workload" to see each.</p>` +
      `<p>${n.flows || 0} flows in and out</p>`;
  }

  /** Sets attributes only where they change: every change makes sigma re-process the item. */
  function setNode(g, n, attrs) {
    const a = g.getNodeAttributes(n);
    for (const k in attrs) {
      if (a[k] !== attrs[k]) {
        g.mergeNodeAttributes(n, attrs);
        return;
      }
    }
  }

  function setEdge(g, e, attrs) {
    const a = g.getEdgeAttributes(e);
    for (const k in attrs) {
      if (a[k] !== attrs[k]) {
        g.mergeEdgeAttributes(e, attrs);
        return;
      }
    }
  }

  function setFocus(nodeId) {
    const g = state.graph;
    drawEdgesOf(nodeId);
    const keep = new Set([nodeId]);
    g.forEachNeighbor(nodeId, (n) => keep.add(n));
    g.forEachNode((n) => setNode(g, n, { dim: !keep.has(n), focus: n === nodeId }));
    // Edges of the selected node stay and show their ports and counts.
    g.forEachEdge((e, _a, s, t) => {
      const touches = s === nodeId || t === nodeId;
      setEdge(g, e, { dim: !touches, focus: touches });
    });
  }

  function clearFocus() {
    const g = state.graph;
    if (!g) return;
    state.selected = null;
    drawEdgesOf(null);
    g.forEachNode((n) => setNode(g, n, { dim: false, focus: false }));
    g.forEachEdge((e) => setEdge(g, e, { dim: false, focus: false }));
    highlightBlocked();
  }

  async function centerOn(id) {
    const r = state.renderer;
    const d = r.getNodeDisplayData(id);
    if (!d) return;
    await r.getCamera().animate(
      {
        x: d.x,
        y: d.y,
        ratio: Math.min(r.getCamera().getState().ratio, state.graph.order > 500 ? 0.25 : 0.8),
      },
      { duration: 300 },
    );
  }

  async function selectNode(id) {
    const seq = claimPanel();
    state.selected = id;
    if (state.graph.hasNode(id)) {
      setFocus(id);
      void centerOn(id);
    } else {
      // A workload no flow was observed for: no node to focus, its details only.
      clearFocus();
      state.selected = id;
    }
    $('panel-body').innerHTML = '<p class="muted">Loading…</p>';
    let d;
    try {
      d = await api(`/nodes?id=${encodeURIComponent(id)}`);
    } catch (err) {
      if (ownsPanel(seq)) showPanelError(`Could not load the details of ${id}`, err);
      return;
    }
    if (ownsPanel(seq)) renderDetails(d);
  }

  // ---------------- filters, legend ----------------
  function fillFilters(view) {
    const ns = $('filter-namespace');
    const seg = $('filter-segment');
    const keepNs = state.filter.namespace;
    const keepSeg = state.filter.segment;
    ns.innerHTML =
      '<option value="">All namespaces</option>' +
      view.namespaces.map((n) => `<option>${esc(n)}</option>`).join('');
    seg.innerHTML =
      '<option value="">All segments</option>' +
      view.segments.map((s) => `<option value="${esc(s.id)}">${esc(s.id)} (${s.members})</option>`).join('');
    ns.value = keepNs;
    seg.value = keepSeg;
  }

  function applyFilters() {
    const g = state.graph;
    if (!g) return;
    if (state.view.edges.length > EDGE_DRAW_LIMIT) {
      // Only some edges are drawn: those of the nodes shown now are chosen again.
      redraw();
      if (state.selected && g.hasNode(state.selected) && state.graph.hasNode(state.selected))
        setFocus(state.selected);
      return;
    }
    g.forEachNode((n, a) => setNode(g, n, { hidden: hiddenByFilter(a) }));
    g.forEachEdge((e, _a, s, t) => {
      setEdge(g, e, { hidden: g.getNodeAttribute(s, 'hidden') || g.getNodeAttribute(t, 'hidden') });
    });
  }

  function drawLegend(view) {
    const rows = view.segments
      .slice(0, 40)
      .map(
        (s) =>
          `<div class="row"><span class="chip" style="background:${esc(s.color)}"></span>${esc(s.id)} <span class="muted">(${s.members})</span></div>`,
      );
    if (view.segments.length > 40)
      rows.push(`<div class="muted">… ${view.segments.length - 40} more segments</div>`);
    const kinds = Object.entries(KIND_STYLE)
      .map(
        ([, k]) =>
          `<div class="row"><span class="chip" style="background:${k.color};border-radius:${k.shape === 'circle' ? '50%' : '0'}"></span>${esc(k.name)} (${k.shape})</div>`,
      )
      .join('');
    $('legend').innerHTML =
      `<strong>Segments</strong>${rows.join('')}<strong>Other nodes</strong>${kinds}` +
      `<div class="row"><span class="chip" style="background:${ISOLATED_COLOR}"></span>isolated workload</div>` +
      `<div class="row"><span class="chip" style="background:${EDGE_BLOCKED};border-radius:0;height:3px"></span> would be blocked</div>`;
  }

  // ---------------- search ----------------
  let searchTimer = null;
  async function runSearch(q) {
    const list = $('search-results');
    if (!q) {
      list.hidden = true;
      return;
    }
    let res;
    try {
      res = await api(`/search?q=${encodeURIComponent(q)}&limit=20`);
    } catch (err) {
      if ($('search').value.trim() !== q) return; // typed on since: a newer search answers
      list.innerHTML = `<li class="error" role="alert" id="search-error">Search failed: ${esc(errorText(err))}</li>`;
      list.hidden = false;
      return;
    }
    if ($('search').value.trim() !== q) return;
    $('search').removeAttribute('aria-activedescendant');
    list.innerHTML = res.results
      .map(
        (h, i) =>
          `<li role="option" id="search-hit-${i}" aria-selected="false" data-id="${esc(h.id)}" data-segment="${esc(h.segment || '')}"${h.unobserved ? ' data-unobserved="1"' : ''}>${esc(h.label)} <span class="muted">${esc(h.namespace || h.kind)}${h.segment ? ` · ${esc(h.segment)}` : ''}${h.unobserved ? ' · no flow observed' : ''}</span></li>`,
      )
      .join('');
    if (!res.results.length) list.innerHTML = '<li class="muted">No match</li>';
    // The server lists the best 20: say that there are more, or a user takes a workload that is not
    // listed for one that does not exist.
    const more = res.total - res.results.length;
    if (more > 0)
      list.insertAdjacentHTML(
        'beforeend',
        `<li class="muted" id="search-more">… and ${more} more: type more of the name</li>`,
      );
    list.hidden = false;
  }

  async function goTo(id, segment, unobserved) {
    $('search-results').hidden = true;
    if (unobserved) {
      await selectNode(id);
      return;
    }
    const seq = panelSeq;
    if (!state.graph.hasNode(id) && !segment) {
      // A link that does not say its segment (a peer of the evidence, a workload of an audit or an
      // isolation): in the grouped view its segment may be one node; its details say which.
      const d = await api(`/nodes?id=${encodeURIComponent(id)}`).catch(() => undefined);
      if (!ownsPanel(seq)) return; // the user moved on meanwhile
      if (d && d.segment && !d.unobserved) segment = d.segment;
    }
    if (!state.graph.hasNode(id) && segment && !state.expanded.has(segment)) {
      state.expanded.add(segment);
      // Failed (the status line says why) or taken over by a newer graph request: the user moved on.
      const shown = await loadGraph().catch(() => false);
      if (!shown || !ownsPanel(seq)) return;
    }
    // Drawn now, or never drawn in this view (a workload no flow was observed for, a peer inside a
    // group node of the grouped view): its details all the same.
    await selectNode(id);
  }

  // ---------------- workloads with no flow observed ----------------
  /** The red note on the graph: how many workloads no flow was observed for (hidden for none). */
  function showUnobservedCount(u) {
    const link = $('unobserved-link');
    link.hidden = u === 0;
    link.textContent = `${u} workload${u === 1 ? '' : 's'} with no flow observed (not drawn)`;
  }

  /** The list in the panel (its panel claim and answer): drawn again when the namespace filter changes. */
  let unobservedShown = null;

  async function renderUnobserved() {
    const seq = claimPanel();
    clearFocus();
    $('panel-body').innerHTML = '<p class="muted">Loading…</p>';
    let res;
    try {
      res = await api('/unobserved');
    } catch (err) {
      if (ownsPanel(seq)) showPanelError('Could not load the workloads with no flow observed', err);
      return;
    }
    if (!ownsPanel(seq)) return;
    // Newer than the graph's count: the note says what the list shows.
    showUnobservedCount(res.total);
    unobservedShown = { seq, res };
    drawUnobserved(res);
  }

  function drawUnobserved(res) {
    const ns = state.filter.namespace;
    const shown = ns ? res.workloads.filter((w) => w.namespace === ns) : res.workloads;
    const byNs = new Map();
    for (const w of shown) {
      if (!byNs.has(w.namespace)) byNs.set(w.namespace, []);
      byNs.get(w.namespace).push(w);
    }
    const groups = [...byNs]
      .map(
        ([n, ws]) =>
          `<h3>${esc(n)} <span class="muted">(${ws.length})</span></h3><ul>` +
          ws
            .map(
              (w) =>
                `<li><span class="clickable" data-goto="${esc(w.id)}" data-unobserved>${esc(w.label)}</span> <span class="muted">${esc(w.workloadKind)}</span></li>`,
            )
            .join('') +
          '</ul>',
      )
      .join('');
    const scope = ns ? ` in namespace ${esc(ns)} (${shown.length} of ${res.total})` : ` (${res.total})`;
    $('panel-body').innerHTML =
      `<h2>No flow observed${scope}</h2>` +
      `<p>No flow to or from these workloads was observed. Only their namespace's default deny ` +
      `selects them: once the proposal is enforced, every connection to or from them is blocked.</p>` +
      `<div id="unobserved-list">${groups || `<p class="muted">${ns ? 'None in this namespace.' : 'None: a flow has been observed for every workload in scope.'}</p>`}</div>`;
    bindPanelLinks();
  }

  // ---------------- details ----------------
  function evidenceTable(rows, dir) {
    if (!rows.length) return `<p class="muted">No ${dir} traffic observed.</p>`;
    const body = rows
      .map(
        (r) =>
          `<tr><td><span class="clickable" data-goto="${esc(r.peer)}">${esc(r.peerLabel)}</span></td><td>${esc(r.protocol)}/${r.port}</td><td class="num"${r.viaService ? ` title="${r.viaService} shared: went to a Service with several backends, or to pods a selector of several workloads matches"` : ''}>${r.count}${r.viaService ? '*' : ''}</td><td>${esc(time(r.firstSeen))}</td><td>${esc(time(r.lastSeen))}</td></tr>`,
      )
      .join('');
    const note = rows.some((r) => r.viaService)
      ? '<p class="muted">* some or all of these flows are shared: they went to a Service with several backends, or to pods a selector of several workloads matches; any of these may have taken them, so the edge to each counts them.</p>'
      : '';
    return `<table><thead><tr><th>${dir === 'inbound' ? 'From' : 'To'}</th><th>Port</th><th class="num">Flows</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>${body}</tbody></table>${note}`;
  }

  function reachTable(br) {
    const row = (label, b, a) =>
      `<tr><td>${label}</td><td class="num">${b}</td><td class="num">${a}</td></tr>`;
    const examples = (label, xs) =>
      xs && xs.length
        ? `<div><strong>${label}</strong><ul>${xs.map((x) => `<li>${esc(x)}</li>`).join('')}</ul></div>`
        : '';
    return (
      `<table class="blast"><thead><tr><th></th><th class="num">Before</th><th class="num">After</th></tr></thead><tbody>` +
      row('Can reach', br.before.canReach, br.after.canReach) +
      row('Reachable from', br.before.reachableFrom, br.after.reachableFrom) +
      `</tbody></table>` +
      `<details><summary>What it can still reach and be reached from after the proposal</summary>` +
      examples('Reaches', br.after.reachExamples) +
      examples('Reached from', br.after.fromExamples) +
      `</details>`
    );
  }

  /** A CronJob's schedule and runs: when its next run comes, its traffic can be seen. */
  function cronJobRuns(c) {
    const bits = [];
    if (c.schedule) bits.push(`schedule <code>${esc(c.schedule)}</code> (${esc(c.timeZone || 'UTC')})`);
    if (c.suspended) bits.push('<strong>suspended</strong>: no run starts');
    if (c.running) bits.push('a run is going');
    bits.push(c.lastRun ? `last run ${esc(time(c.lastRun))}` : 'never run');
    if (c.lastSuccess) bits.push(`last success ${esc(time(c.lastSuccess))}`);
    if (c.nextRun) bits.push(`next run ${esc(time(c.nextRun))}`);
    return `<p id="cronjob-runs">CronJob: ${bits.join(' · ')}</p>`;
  }

  function renderDetails(d) {
    const seg = d.segment ? state.segments.get(d.segment) : undefined;
    const parts = [];
    parts.push(`<h2 id="details-title">${esc(d.label)}</h2>`);
    parts.push(`<div class="muted">${esc(d.id)}</div>`);
    parts.push('<p>');
    parts.push(`<span class="badge">${esc(d.kind)}</span> `);
    if (d.namespace) parts.push(`<span class="badge">ns ${esc(d.namespace)}</span> `);
    if (seg)
      parts.push(
        `<span class="badge"><span class="chip-inline" style="background:${esc(seg.color)}"></span>segment ${esc(seg.id)}</span> `,
      );
    if (d.isolation)
      parts.push(
        isolationInEffect(d.isolation)
          ? `<span class="badge danger" id="isolation-badge">isolated (${esc(d.isolation.method)})</span>`
          : `<span class="badge" id="isolation-badge">isolation ${esc(d.isolation.state.toLowerCase())}: no pod isolated</span>`,
      );
    if (d.unobserved) parts.push('<span class="badge danger">no flow observed</span>');
    parts.push('</p>');
    if (d.unobserved)
      parts.push(
        `<p id="unobserved-note">No flow to or from this workload was observed, so it is not drawn. ` +
          `Only its namespace's default deny selects it: once enforced, every connection to or from it ` +
          `is blocked. If it should talk (a CronJob whose runs fell outside the flows learned, a ` +
          `workload idle meanwhile), learn over a span that includes its traffic before enforcing.</p>`,
      );
    if (d.cronJob) parts.push(cronJobRuns(d.cronJob));
    const labels = Object.entries(d.labels || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (labels.length)
      parts.push(
        `<p id="node-labels">Labels: ${labels.map(([k, v]) => `<span class="badge label">${esc(k)}=${esc(v)}</span>`).join(' ')}</p>`,
      );
    parts.push(`<p>${d.flowsIn} flows in · ${d.flowsOut} flows out</p>`);
    if (d.names && d.names.length) parts.push(`<p>DNS: ${d.names.map(esc).join(', ')}</p>`);
    if (d.blastRadius) {
      parts.push('<h3>Blast radius</h3>');
      parts.push(reachTable(d.blastRadius));
    }
    if (d.kind === 'workload' && state.info) parts.push(actionButtons(d));
    parts.push('<h3>Inbound</h3>', evidenceTable(d.inbound, 'inbound'));
    parts.push('<h3>Outbound</h3>', evidenceTable(d.outbound, 'outbound'));
    if (d.kind === 'workload') {
      parts.push('<h3>Proposed NetworkPolicy</h3>');
      if (d.policyYaml) {
        parts.push(`<p class="muted">${d.policies.map(esc).join(', ')}</p>`);
        parts.push(
          '<button type="button" id="copy-yaml" class="action">Copy YAML</button> <span id="copy-done" class="muted"></span>',
        );
        parts.push(`<pre class="yaml" id="policy-yaml">${esc(d.policyYaml)}</pre>`);
      } else
        parts.push('<p class="muted">No policy selects this workload (its namespace is not covered).</p>');
    }
    if (d.isolation && d.isolation.leaks.length) {
      parts.push('<h3>Leaks</h3>');
      parts.push(d.isolation.leaks.map((l) => `<p>${esc(l.message)}</p>`).join(''));
    }
    $('panel-body').innerHTML = parts.join('');
    const copy = $('copy-yaml');
    if (copy)
      copy.onclick = async () => {
        try {
          await navigator.clipboard.writeText(d.policyYaml);
          $('copy-done').textContent = 'Copied';
        } catch {
          const range = document.createRange();
          range.selectNodeContents($('policy-yaml'));
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
          $('copy-done').textContent = 'Selected: press Ctrl+C';
        }
      };
    bindPanelLinks();
    const iso = $('isolate-btn');
    if (iso)
      iso.onclick = () => {
        const reason = window.prompt(`Isolate ${d.id}? Reason:`, 'suspected compromise');
        if (reason === null) return;
        void act(iso, d.id, `Could not isolate ${d.id}`, `Isolated ${d.id}`, () =>
          api('/isolations', { method: 'POST', body: { workload: d.id, reason } }),
        );
      };
    const rel = $('release-btn');
    if (rel)
      rel.onclick = () => {
        const iso = d.isolation;
        const key = iso.namespace ? `${iso.namespace}/${iso.name}` : iso.name;
        void act(rel, d.id, `Could not release ${key}`, `Released ${key}`, () =>
          api(`/isolations/${encodeURIComponent(key)}`, { method: 'DELETE' }),
        );
      };
  }

  /**
   * Runs the action of a button in the details of workload `id`. Its outcome is always shown: while
   * those details are still in the panel, a failure beside the button (usable again) and a success in
   * the details shown again; once the user has moved on, below the status line. Either way the graph is
   * drawn again after a success.
   */
  async function act(button, id, failed, done, request) {
    const seq = panelSeq; // the details the button is in
    button.disabled = true;
    const note = $('action-error');
    if (note) note.textContent = '';
    actionNote('');
    try {
      await request();
    } catch (err) {
      const text = `${failed}: ${errorText(err)}`;
      const here = ownsPanel(seq) && $('action-error');
      if (here) {
        button.disabled = false;
        here.textContent = text;
      } else actionNote(text, true);
      return;
    }
    try {
      await refreshIsolations();
      await loadGraph();
    } catch (err) {
      status(`${done}, but the page could not be refreshed: ${errorText(err)}`);
    }
    if (ownsPanel(seq)) await selectNode(id);
    else actionNote(done, false);
  }

  function actionButtons(d) {
    const f = state.info.features;
    const canAct = state.info.auth.canAct;
    if (!canAct) return '';
    const note = ' <span class="error" role="alert" id="action-error"></span>';
    if (d.isolation && f.release)
      return `<p><button type="button" class="action" id="release-btn">Release isolation</button>${note}</p>`;
    if (!d.isolation && f.isolate)
      return `<p><button type="button" class="action danger" id="isolate-btn">Isolate workload</button>${note}</p>`;
    return '';
  }

  /**
   * The links of the panel are spans: each is made reachable with Tab and followed with Enter or Space,
   * as a click follows it.
   */
  function keyboardLinks() {
    for (const el of document.querySelectorAll(
      '#panel [data-goto], #panel [data-edge], #panel [data-audit]',
    )) {
      if (el.tagName === 'H3' && !el.classList.contains('clickable')) continue; // the audit drawn already
      el.tabIndex = 0;
      el.setAttribute('role', 'link');
      el.onkeydown = (ev) => {
        if (ev.key !== 'Enter' && ev.key !== ' ') return;
        ev.preventDefault();
        el.click();
      };
    }
  }

  function bindPanelLinks() {
    keyboardLinks();
    for (const el of document.querySelectorAll('#panel [data-audit]')) {
      el.onclick = () => {
        const name = el.getAttribute('data-audit');
        if (name === state.audit) return;
        state.audit = name;
        void renderRollout();
      };
    }
    for (const el of document.querySelectorAll('#panel [data-goto]')) {
      el.onclick = () => {
        const id = el.getAttribute('data-goto');
        void goTo(id, el.getAttribute('data-segment') || undefined, el.hasAttribute('data-unobserved'));
      };
    }
    for (const el of document.querySelectorAll('#panel [data-edge]')) {
      el.onclick = () => {
        focusBlocked(el.getAttribute('data-edge'));
        for (const r of document.querySelectorAll('#panel .blocked-row')) r.classList.remove('selected');
        el.closest('tr').classList.add('selected');
      };
    }
  }

  /**
   * An edge's flows, ports and the observed connections merged into it (`edges`: one per source,
   * destination, port and protocol; a segment's edge in the grouped view merges its members' on a port).
   */
  function edgeCounts(e) {
    const n = (k, one, many) => `${k} ${k === 1 ? one : many}`;
    return (
      `${n(e.count, 'flow', 'flows')} on ${n(e.ports.length, 'port', 'ports')} (${esc(e.ports.join(', '))}), ` +
      `in ${n(e.edges, 'observed connection', 'observed connections')}`
    );
  }

  function showEdge(id) {
    claimPanel();
    const a = state.graph.getEdgeAttributes(id);
    const e = a.data;
    const src = state.graph.getNodeAttribute(e.source, 'label');
    const dst = state.graph.getNodeAttribute(e.target, 'label');
    $('panel-body').innerHTML =
      `<h2>${esc(src)} → ${esc(dst)}</h2><p>${esc(e.ports.join(', '))}</p>` +
      `<p id="edge-counts">${edgeCounts(e)}; first seen ${esc(time(e.firstSeen))}, last seen ${esc(time(e.lastSeen))}</p>` +
      (e.viaService
        ? `<p>${e.viaService} of them are shared: they went to a Service with several backends, or to pods a selector of several workloads matches; any of these may have taken them, so the edge to each counts them.</p>`
        : '') +
      (e.blocked ? `<p><span class="badge danger">${e.blocked} flows would be blocked</span></p>` : '') +
      (e.dropped ? '<p><span class="badge">every flow was dropped</span></p>' : '');
  }

  // ---------------- rollout (audit) ----------------
  function highlightBlocked() {
    const g = state.graph;
    if (!g || !state.audit) return;
    g.forEachEdge((e, a) => setEdge(g, e, { dim: !a.blocked }));
  }

  function focusBlocked(key) {
    const g = state.graph;
    const edges = g.filterEdges((e, a) => a.blocked > 0 && (a.data.blockedFlows || []).includes(key));
    const chosen = new Set(edges);
    g.forEachEdge((e) => setEdge(g, e, { dim: !chosen.has(e), focus: chosen.has(e) }));
    state.selectedEdge = edges[0] || null;
    if (edges[0]) void centerOn(g.source(edges[0]));
  }

  /** `namespace/Kind/name` → `namespace/name`; other ids unchanged. */
  function shortId(id) {
    const p = id.split('/');
    return p.length === 3 ? `${p[0]}/${p[2]}` : id;
  }

  function blockedKey(b) {
    return b.edge || `${b.source}->${b.target}:${b.port}/${b.protocol}`;
  }

  async function renderRollout() {
    const seq = claimPanel();
    try {
      const audits = state.info.features.audit ? await api('/audits') : [];
      if (!ownsPanel(seq)) return; // the user moved on: draw no audit for a view they left
      state.audits = audits;
      if (!state.audit && state.audits.length) state.audit = state.audits[0].name;
      await loadGraph();
    } catch (err) {
      if (ownsPanel(seq)) showPanelError('Could not load the rollout', err);
      return;
    }
    if (!ownsPanel(seq)) return;
    highlightBlocked();
    const parts = ['<h2>Rollout</h2>'];
    for (const a of state.audits) {
      const shown = a.name === state.audit;
      parts.push(
        `<h3 class="${shown ? '' : 'clickable'}" data-audit="${esc(a.name)}" title="${shown ? 'drawn on the graph' : 'click to draw on the graph'}">${esc(a.name)} · <span class="badge">${esc(a.mode)}</span>${a.phase ? ` <span class="badge">${esc(a.phase)}</span>` : ''}${shown ? ' <span class="badge danger">on graph</span>' : ''}</h3>`,
      );
      if (a.namespaces.length)
        parts.push(`<p class="muted">Namespaces: ${a.namespaces.map(esc).join(', ')}</p>`);
      if (a.since) parts.push(`<p class="muted">Audit window since ${esc(time(a.since))}</p>`);
      parts.push(
        '<table><thead><tr><th>Condition</th><th>Status</th><th>Reason</th></tr></thead><tbody>' +
          a.conditions
            .map(
              (c) =>
                `<tr title="${esc(c.message)}"><td>${esc(c.type)}</td><td>${esc(c.status)}</td><td>${esc(c.reason)}<div class="muted">${esc(c.message)}</div></td></tr>`,
            )
            .join('') +
          '</tbody></table>',
      );
      parts.push(`<h3>Would be blocked (${a.wouldBlock.length})</h3>`);
      if (!a.wouldBlock.length)
        parts.push('<p><span class="badge ok">none</span> every observed flow is allowed</p>');
      else
        parts.push(
          '<table id="would-block"><thead><tr><th>Connection</th><th>Port</th><th class="num">Flows</th></tr></thead><tbody>' +
            a.wouldBlock
              .map(
                (b) =>
                  `<tr class="blocked-row" title="${esc(b.reason || '')}"><td><span class="clickable" data-edge="${esc(blockedKey(b))}">${esc(shortId(b.source))} → ${esc(shortId(b.target))}</span></td><td>${esc(b.protocol)}/${b.port}</td><td class="num">${b.count}</td></tr>`,
              )
              .join('') +
            '</tbody></table>',
        );
      parts.push(notReplayedHtml(a.notReplayed, true));
      if (a.unobserved) {
        // Their traffic cannot show above: they made none. The default deny cuts them off all the same.
        const more = a.unobserved - a.unobservedWorkloads.length;
        parts.push(
          `<h3>Cut off once enforced, no flow observed (${a.unobserved})</h3>` +
            '<p class="muted">Only the default deny selects these: enforcing blocks every connection to or from them.</p>' +
            `<ul class="unobserved-audit">${a.unobservedWorkloads
              .map(
                (id) =>
                  `<li><span class="clickable" data-goto="${esc(id)}" data-unobserved>${esc(shortId(id))}</span></li>`,
              )
              .join('')}${more > 0 ? `<li class="muted">… and ${more} more</li>` : ''}</ul>`,
        );
      }
      const d = a.enforce;
      parts.push('<h3>Enforce would change</h3>');
      parts.push(
        `<p><span class="badge">${d.added.length} added</span> <span class="badge">${d.changed.length} changed</span> <span class="badge">${d.removed.length} removed</span> <span class="muted">${d.unchanged} unchanged</span></p>`,
      );
      const list = (label, xs) =>
        xs.length ? `<p><strong>${label}:</strong> ${xs.map(esc).join(', ')}</p>` : '';
      parts.push(
        list('Added', d.added),
        list('Changed', d.changed),
        list('Removed', d.removed),
        list('Left untouched (held by a policy microseg does not manage)', d.conflicts || []),
        list('Default deny held back (a policy of its namespace is left untouched)', d.held || []),
      );
    }
    if (!state.audits.length && state.info.features.audit)
      parts.push('<p class="muted">No Segmentation is being audited.</p>');
    if (state.info.features.auditPolicies) parts.push(policyAuditForm());
    $('panel-body').innerHTML = parts.join('');
    const run = $('audit-run');
    if (run) {
      run.onclick = () => void runPolicyAudit();
      // What the user typed or checked stays while they look elsewhere, audited or not.
      $('audit-input').oninput = (ev) => (state.auditDraft = ev.target.value);
      $('audit-prune').onchange = (ev) => (state.auditPrune = ev.target.checked);
    }
    bindPanelLinks();
  }

  /**
   * What an audit did not replay, so does not list (`notReplayed`: absent in the controller's), by why:
   * ICMP and connections dropped at every observation, which enforcing may block all the same (what
   * recommend's report.json counts under verification.willBeBlocked, which `report` says: in the
   * Rollout view, of a proposal), then the rest.
   */
  function notReplayedHtml(n, report) {
    if (!n) return '';
    const parts = [];
    const mayBlock = n.protocol + n.dropped;
    if (mayBlock)
      parts.push(
        `<p class="muted not-replayed" role="note">Not replayed, so not listed above: ${mayBlock} observed connection(s) enforcing may block: ` +
          [
            n.protocol
              ? `${n.protocol} ICMP (NetworkPolicy cannot allow ICMP: blocked wherever a policy isolates an end)`
              : '',
            n.dropped
              ? `${n.dropped} dropped at every observation (denied now, and still unless a policy allows it)`
              : '',
          ]
            .filter(Boolean)
            .join(', ') +
          (report
            ? ". recommend's report.json names under verification.willBeBlocked those its proposal blocks.</p>"
            : '.</p>'),
      );
    const others = [
      n.node ? `${n.node} from a node to pods (a pod's own node is always admitted)` : '',
      n.unplaced ? `${n.unplaced} with an end the snapshot cannot place` : '',
    ].filter(Boolean);
    if (others.length)
      parts.push(`<p class="muted not-replayed-other">Not replayed either: ${others.join(', ')}.</p>`);
    return parts.join('');
  }

  // ---------------- auditing a change ----------------
  /** A box for a set of NetworkPolicies (a change under review) to replay the observed traffic against. */
  function policyAuditForm() {
    return (
      '<h3>Audit a change</h3>' +
      '<p class="muted">Paste NetworkPolicies, YAML or JSON (a repository\'s files, <code>kubectl kustomize</code> ' +
      'of an overlay): the observed traffic is replayed against the cluster with them applied.</p>' +
      `<textarea id="audit-input" rows="8" spellcheck="false" aria-label="NetworkPolicies to audit">${esc(state.auditDraft || '')}</textarea>` +
      `<p><label><input type="checkbox" id="audit-prune"${state.auditPrune ? ' checked' : ''}> leave out microseg's own ` +
      'policies the set does not hold, in its namespaces</label> <button type="button" id="audit-run">Audit</button></p>' +
      `<div id="audit-result">${state.auditResult ? policyAuditResult(state.auditResult) : state.auditError ? auditErrorHtml(state.auditError) : ''}</div>`
    );
  }

  function policyAuditResult(r) {
    const parts = [];
    const pruned = r.policies.pruned.length;
    parts.push(
      `<p id="audit-summary">${r.connections.replayed} observed connection(s) replayed against ${r.policies.audited.length} ` +
        `polic${r.policies.audited.length === 1 ? 'y' : 'ies'}${pruned ? `, leaving out ${pruned} of microseg's` : ''}.</p>`,
    );
    parts.push(`<h4>Would be blocked (${r.wouldBlock.length})</h4>`);
    if (!r.wouldBlock.length)
      parts.push(
        '<p id="audit-none"><span class="badge ok">none</span> every observed connection stays allowed</p>',
      );
    else
      parts.push(
        '<table id="audit-blocked"><thead><tr><th>Connection</th><th>Port</th><th class="num">Flows</th></tr></thead><tbody>' +
          r.wouldBlock
            .map(
              (b) =>
                `<tr class="audit-row"><td><span class="clickable" data-goto="${esc(b.source)}">${esc(shortId(b.source))}</span> → ` +
                `<span class="clickable" data-goto="${esc(b.target)}">${esc(shortId(b.target))}</span>` +
                `<div class="muted">${esc(b.reason)}</div></td><td>${esc(b.protocol)}/${b.port}</td><td class="num">${b.count}</td></tr>`,
            )
            .join('') +
          '</tbody></table>',
      );
    parts.push(notReplayedHtml(r.connections.notReplayed, false));
    if (r.unobserved.length)
      parts.push(
        `<h4>Cut off, no flow observed (${r.unobserved.length})</h4>` +
          '<p class="muted">Of the policies once applied, only a default deny selects these.</p>' +
          `<ul id="audit-unobserved">${r.unobserved
            .map(
              (id) =>
                `<li><span class="clickable" data-goto="${esc(id)}" data-unobserved>${esc(shortId(id))}</span></li>`,
            )
            .join('')}</ul>`,
      );
    if (r.cronJobsNotRun && r.cronJobsNotRun.length)
      parts.push(
        `<p class="muted" id="audit-cronjobs">Of them, ${r.cronJobsNotRun.length} CronJob(s) started no run the ` +
          `observed traffic covers, so what they need is unknown: ${r.cronJobsNotRun.map((id) => esc(shortId(id))).join(', ')}</p>`,
      );
    const ignored = Object.entries(r.ignored || {});
    if (ignored.length)
      parts.push(
        `<p class="muted" id="audit-ignored">Left out, not policies: ${ignored.map(([k, n]) => `${esc(k)} ${n}`).join(', ')}</p>`,
      );
    return parts.join('');
  }

  function auditErrorHtml(message) {
    return `<p class="error" role="alert" id="audit-error">${esc(message)}</p>`;
  }

  // The audit asked for last: a slower answer to an earlier click is not shown, nor kept.
  let auditSeq = 0;
  async function runPolicyAudit() {
    const text = $('audit-input').value;
    const prune = $('audit-prune').checked;
    state.auditDraft = text;
    state.auditPrune = prune;
    const seq = ++auditSeq;
    $('audit-result').innerHTML = '<p class="muted">Auditing…</p>';
    let html;
    try {
      const r = await api(`/audit${prune ? '?prune=true' : ''}`, { method: 'POST', raw: text });
      if (seq !== auditSeq) return;
      state.auditResult = r;
      state.auditError = null;
      html = policyAuditResult(r);
    } catch (err) {
      if (seq !== auditSeq) return;
      // Kept like a result: a refusal answered while the user looked elsewhere is said on their return.
      state.auditResult = null;
      state.auditError = errorText(err);
      html = auditErrorHtml(state.auditError);
    }
    // The user may have left the Rollout tab meanwhile: the result waits for their return.
    const box = $('audit-result');
    if (!box) return;
    box.innerHTML = html;
    bindPanelLinks();
  }

  // ---------------- isolation ----------------
  async function refreshIsolations() {
    if (!state.info.features.isolations) return;
    state.isolations = await api('/isolations');
  }

  async function renderIsolation() {
    const seq = claimPanel();
    try {
      await refreshIsolations();
    } catch (err) {
      if (ownsPanel(seq)) showPanelError('Could not load the isolations', err);
      return;
    }
    if (!ownsPanel(seq)) return;
    const parts = ['<h2>Isolation</h2>'];
    const active = state.isolations.filter((i) => i.state !== 'Released' && i.state !== 'Failed');
    if (!active.length) parts.push('<p class="muted">No active isolation.</p>');
    for (const i of state.isolations) {
      parts.push(
        `<h3>${esc(i.namespace ? `${i.namespace}/${i.name}` : i.name)} <span class="badge ${i.state === 'Released' || i.state === 'Failed' ? '' : 'danger'}">${esc(i.state)}</span></h3>` +
          `<p>Target <span class="clickable" data-goto="${esc(i.workloads[0] || i.target)}">${esc(i.target)}</span> · method ${esc(i.method)}${i.since ? ` · since ${esc(time(i.since))}` : ''}</p>` +
          (i.reason ? `<p class="muted">${esc(i.reason)}</p>` : '') +
          (i.message ? `<p class="isolation-message">${esc(i.message)}</p>` : '') +
          (i.pods.length ? `<p class="muted">Pods: ${i.pods.map(esc).join(', ')}</p>` : '') +
          (i.leaks.length
            ? `<p><span class="badge danger">${i.leaks.length} leak(s)</span></p>` +
              i.leaks.map((l) => `<p>${esc(l.message)}</p>`).join('')
            : '<p><span class="badge ok">no leaks</span></p>'),
      );
    }
    $('panel-body').innerHTML = parts.join('');
    bindPanelLinks();
  }

  // ---------------- tabs, wiring ----------------
  function resetCamera() {
    if (state.renderer) void state.renderer.getCamera().reset({ duration: 200 });
  }

  async function switchTab(tab) {
    resetCamera();
    for (const b of document.querySelectorAll('#tabs button'))
      b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    document.body.dataset.tab = tab;
    if (tab === 'graph') {
      const seq = claimPanel();
      const had = state.audit;
      state.audit = null;
      $('panel-body').innerHTML =
        '<p class="muted">Click a node to see its segment, its traffic and the policy proposed for it.</p>';
      // A failure is on the status line; the graph drawn stays.
      if (had) await loadGraph().catch(() => undefined);
      if (ownsPanel(seq)) clearFocus();
    } else if (tab === 'rollout') await renderRollout();
    else if (tab === 'isolation') await renderIsolation();
  }

  function wire() {
    for (const b of document.querySelectorAll('#tabs button'))
      b.onclick = () => void switchTab(b.dataset.tab).catch((err) => status(`Error: ${errorText(err)}`));
    $('search').addEventListener('input', (ev) => {
      clearTimeout(searchTimer);
      const q = ev.target.value.trim();
      searchTimer = setTimeout(() => void runSearch(q), 120);
    });
    $('search').addEventListener('keydown', (ev) => {
      const hits = [...document.querySelectorAll('#search-results li[data-id]')];
      const at = hits.findIndex((li) => li.getAttribute('aria-selected') === 'true');
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        // The arrows choose a result (the input keeps the focus, the list says which is chosen).
        if (!hits.length) return;
        ev.preventDefault();
        $('search-results').hidden = false;
        const next = ev.key === 'ArrowDown' ? (at + 1) % hits.length : at <= 0 ? hits.length - 1 : at - 1;
        hits.forEach((li, i) => li.setAttribute('aria-selected', String(i === next)));
        hits[next].scrollIntoView({ block: 'nearest' });
        $('search').setAttribute('aria-activedescendant', hits[next].id);
      } else if (ev.key === 'Enter') {
        // The result chosen with the arrows, else the first.
        const hit = hits[Math.max(at, 0)];
        if (hit) void goTo(hit.dataset.id, hit.dataset.segment || undefined, hit.dataset.unobserved === '1');
      } else if (ev.key === 'Escape') $('search-results').hidden = true;
    });
    $('search').addEventListener('blur', () => {
      // Let a click on a result land first; focus back on the search by then (a sign-in dialog closed,
      // which gives it back) keeps the results shown.
      setTimeout(() => {
        if (document.activeElement !== $('search')) $('search-results').hidden = true;
      }, 200);
    });
    $('search').addEventListener('focus', () => {
      if ($('search-results').children.length && $('search').value.trim()) $('search-results').hidden = false;
    });
    $('search-results').addEventListener('click', (ev) => {
      const li = ev.target.closest('li[data-id]');
      if (li) void goTo(li.dataset.id, li.dataset.segment || undefined, li.dataset.unobserved === '1');
    });
    $('filter-namespace').onchange = (ev) => {
      state.filter.namespace = ev.target.value;
      applyFilters();
      // The list of workloads with no flow observed shows the namespace filtered.
      if (unobservedShown && ownsPanel(unobservedShown.seq)) drawUnobserved(unobservedShown.res);
    };
    $('action-note').onclick = () => actionNote('');
    $('unobserved-link').onclick = () =>
      void renderUnobserved().catch((err) => status(`Error: ${errorText(err)}`));
    $('filter-segment').onchange = (ev) => {
      state.filter.segment = ev.target.value;
      applyFilters();
    };
    $('view-mode').onchange = (ev) => {
      state.viewMode = ev.target.value;
      state.expanded.clear();
      // On failure the status line says why, and the choice goes back to the view still drawn.
      loadGraph().catch(() => undefined);
    };
  }

  /**
   * What the page loads before it is usable: the server's settings, the isolations, the graph. One that
   * fails is said on the status line and in the panel, naming it, with *Try again*, which starts over.
   */
  async function start() {
    delete document.body.dataset.error;
    status('Loading…');
    let step = "Could not load the server's settings";
    try {
      const info = await api('/info');
      state.info = info;
      $('source-title').textContent = info.info.title;
      const a = info.auth;
      $('auth-status').textContent = a.enabled
        ? a.authenticated
          ? `signed in${a.user ? ` as ${a.user}` : ''}`
          : 'read-only'
        : '';
      if (a.enabled && !a.authenticated) {
        // A server that lets anyone read (anonymousRead) never asks for the token: signing in is how a
        // reader gets the actions. The page starts again with the token, as a first sign-in would.
        $('auth-status').innerHTML = 'read-only <button type="button" id="sign-in">Sign in</button>';
        $('sign-in').onclick = () =>
          void login(false).then((ok) => {
            if (ok) window.location.reload();
          });
      }
      document.querySelector('#tabs [data-tab="rollout"]').hidden =
        !info.features.audit && !info.features.auditPolicies;
      document.querySelector('#tabs [data-tab="isolation"]').hidden = !info.features.isolations;
      step = 'Could not load the isolations';
      await refreshIsolations();
      step = 'Could not load the graph';
      await loadGraph();
    } catch (err) {
      startFailed(step, err);
      return;
    }
    // Started on Try again: the failure in the panel gives way (details opened meanwhile stay).
    if ($('start-retry')) {
      claimPanel();
      $('panel-body').innerHTML =
        '<p class="muted">Click a node to see its segment, its traffic and the policy proposed for it.</p>';
    }
    state.ready = true;
    document.body.dataset.ready = '1';
  }

  function startFailed(what, err) {
    const text = `${what}: ${errorText(err)}`;
    status(text);
    claimPanel();
    $('panel-body').innerHTML =
      `<p class="error" role="alert" id="panel-error">${esc(text)}</p>` +
      '<p><button type="button" id="start-retry">Try again</button></p>';
    $('start-retry').onclick = () => void start();
    document.body.dataset.error = text;
  }

  wire();
  void start();
})();
