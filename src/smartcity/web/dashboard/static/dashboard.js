// The operations dashboard: signs in, embeds the live map (clustered), and adds incidents from
// /ops/v1 (list, then the server-sent event stream), the incident panel, KPI tiles and charts.
// Who may see or do what is decided by the server; the page only hides buttons the user's
// roles cannot use. Data is only ever put on the page as text (textContent), never as HTML.
(() => {
  "use strict";

  const STORE = { credential: "smartcity.map.credential", tenant: "smartcity.map.tenant" };
  const OPEN = ["new", "acknowledged", "in-progress", "resolved"];
  const SEVERITY_ORDER = ["critical", "high", "medium", "low", "informational"];
  const KPI_MS = 2000;
  const AGENCY_REFRESH_MS = 10000;

  const TEXT = {
    ko: {
      title: "창동 통합상황관제", subtitle: "스마트시티 통합플랫폼", signOut: "로그아웃", signIn: "로그인",
      loginHint: "운영자·유관기관 로그인", userName: "사용자 이름", password: "비밀번호", tenant: "테넌트 (선택)",
      loginFailed: "이름 또는 비밀번호가 맞지 않습니다.", expired: "로그인이 만료되었습니다. 다시 로그인하세요.", noAccess: "이 테넌트에서 사건을 볼 권한이 없습니다.",
      layers: "레이어", legend: "범례", incidents: "사건", trend: "추이", language: "EN", otherLanguage: "English",
      kpiOpen: "진행 중 사건", kpiAck: "평균 접수 시간", kpiOffline: "장애·미수신 기기", kpiParking: "주차 점유율",
      kpiCongestion: "교통 정체", newCount: "신규", criticalCount: "긴급", basedOn: "건 기준", devicesOf: "전체 {n}대 중",
      ofLots: "개 주차장", detectorsOf: "검지기 {n}개 중 {c}개", live: "실시간", reconnecting: "재연결 중", all: "전체",
      open: "진행 중", mine: "신규만", none: "사건 없음", actions: "조치", sop: "표준 절차 (SOP)",
      cameras: "주변 CCTV", shares: "영상 공유", sharedCameras: "공유된 CCTV", timeline: "경과", share: "112에 공유",
      agency: "기관", endShare: "공유 종료", openVideo: "영상 보기", comment: "의견 남기기", send: "등록",
      note: "메모 (종결 시 필수)", faces: "사건 방향", metres: "m", until: "까지", ended: "종료됨",
      acknowledge: "접수", start: "처리 시작", resolve: "해결", close: "종결", reopen: "재개",
      "status:new": "신규", "status:acknowledged": "접수", "status:in-progress": "처리 중", "status:resolved": "해결",
      "status:closed": "종결", "severity:critical": "긴급", "severity:high": "높음", "severity:medium": "보통",
      "severity:low": "낮음", "severity:informational": "정보", escalated: "단계 격상", zone: "행정동",
      chooseEntity: "지도에서 기기를 누르면 최근 6시간 추이를 봅니다.", noHistory: "기록 없음", by: "처리",
      selectCameras: "공유할 CCTV를 고르세요.", shareMinutes: "분", video: "영상", roles: "권한",
      "event:created": "사건 생성", "event:alert-merged": "경보 병합", "event:alert-cleared": "경보 해제",
      "event:acknowledged": "접수", "event:started": "처리 시작", "event:resolved": "해결", "event:closed": "종결",
      "event:reopened": "재개", "event:assigned": "담당자 지정", "event:commented": "의견",
      "event:sop-checked": "SOP 완료", "event:sop-unchecked": "SOP 취소", "event:share-granted": "영상 공유",
      "event:share-ended": "영상 공유 종료", "event:link-issued": "영상 링크 발급", "event:camera-viewed": "영상 열람",
      "event:escalated": "격상", "event:package-sent": "연계 정보 전송", "event:green-wave-requested": "우선신호 요청",
      "event:sos-received": "SOS 수신", minutesShort: "분", secondsShort: "초", hoursShort: "시간",
    },
    en: {
      title: "Changdong Operations Center", subtitle: "Smart city integrated platform", signOut: "Sign out",
      signIn: "Sign in", loginHint: "Operators and partner agencies", userName: "User name", password: "Password",
      tenant: "Tenant (optional)", loginFailed: "The name or password is wrong.",
      expired: "The sign-in has expired: sign in again.",
      noAccess: "You may not see incidents in this tenant.", layers: "Layers", legend: "Legend", incidents: "Incidents",
      trend: "Trend", language: "한국어", otherLanguage: "한국어", kpiOpen: "Open incidents", kpiAck: "Time to ack.",
      kpiOffline: "Devices down", kpiParking: "Parking use", kpiCongestion: "Congestion",
      newCount: "new", criticalCount: "critical", basedOn: " ack'd", devicesOf: "of {n} devices", ofLots: " lots",
      detectorsOf: "{c} of {n} detectors", live: "Live", reconnecting: "Reconnecting", all: "All", open: "Open",
      mine: "New only", none: "No incidents", actions: "Actions", sop: "Standard operating procedure",
      cameras: "Cameras nearby", shares: "Video shares", sharedCameras: "Shared cameras", timeline: "Timeline",
      share: "Share with 112", agency: "Agency", endShare: "End share", openVideo: "Open video", comment: "Comment",
      send: "Send", note: "Note (needed to close)", faces: "faces it", metres: "m", until: "until", ended: "ended",
      acknowledge: "Acknowledge", start: "Start", resolve: "Resolve", close: "Close", reopen: "Reopen",
      "status:new": "new", "status:acknowledged": "acknowledged", "status:in-progress": "in progress",
      "status:resolved": "resolved", "status:closed": "closed", "severity:critical": "critical", "severity:high": "high",
      "severity:medium": "medium", "severity:low": "low", "severity:informational": "info", escalated: "escalated",
      zone: "dong", chooseEntity: "Click a device on the map for its last 6 hours.", noHistory: "No history",
      by: "by", selectCameras: "Choose cameras to share.", shareMinutes: "min", video: "Video", roles: "roles",
      "event:created": "opened", "event:alert-merged": "alert merged", "event:alert-cleared": "alert cleared",
      "event:acknowledged": "acknowledged", "event:started": "started", "event:resolved": "resolved",
      "event:closed": "closed", "event:reopened": "reopened", "event:assigned": "assigned", "event:commented": "comment",
      "event:sop-checked": "SOP step done", "event:sop-unchecked": "SOP step undone", "event:share-granted": "video shared",
      "event:share-ended": "video share ended", "event:link-issued": "video link issued",
      "event:camera-viewed": "video viewed", "event:escalated": "escalated", "event:package-sent": "package sent",
      "event:green-wave-requested": "green wave requested", "event:sos-received": "SOS received", minutesShort: " min", secondsShort: " s",
      hoursShort: " h",
    },
  };
  const LIFECYCLE = new Set(["created", "acknowledged", "started", "resolved", "closed", "reopened", "escalated"]);
  const VIDEO = new Set(["share-granted", "share-ended", "link-issued", "camera-viewed"]);
  const SEVERITY_COLOURS = {
    critical: "#b91c1c", high: "#ea580c", medium: "#d97706", low: "#2563eb", informational: "#64748b",
  };
  // Icons drawn here (24x24 paths, white on the severity's colour).
  const ICONS = {
    crime: "M12 4l6 2.5v4.5c0 4-2.6 6.8-6 8-3.4-1.2-6-4-6-8V6.5z",
    fire: "M12 4c1 3 4 4.5 4 8.5a4 4 0 0 1-8 0c0-2 1-3 2-4 0 1.5.8 2.5 1.6 2.5C11 9 11 6.5 12 4z",
    rescue: "M10 5h4v5h5v4h-5v5h-4v-5H5v-4h5z",
    traffic: "M6 15l1.5-5h9l1.5 5v3h-2v-1.5h-8V18H6zm2-1h2v-1.5H8zm6 0h2v-1.5h-2z",
    disaster: "M4 15c2-2 4-2 6 0s4 2 6 0 3-2 4-1v3c-1-1-2-1-4 1s-4 2-6 0-4-2-6 0zM12 5l4 7H8z",
    "vulnerable-person": "M12 4a2.2 2.2 0 1 1 0 4.4A2.2 2.2 0 0 1 12 4zm-3 6h6l-1 5v5h-4v-5z",
    facility: "M14.5 4a4.5 4.5 0 0 0-4.2 6.1L4 16.4 7.6 20l6.3-6.3A4.5 4.5 0 0 0 20 9.5l-2.7 2.7-3.5-3.5L16.5 6A4.5 4.5 0 0 0 14.5 4z",
    environment: "M18 5c-8 0-12 4-12 9 0 2 1 4 1 4s1-5 7-8c-4 3-5 6-5 8 7 0 9-6 9-13z",
    other: "M11 6h2v8h-2zm0 10h2v2h-2z",
  };

  const state = {
    language: "ko", me: null, incidents: new Map(), markers: new Map(), shownAt: {}, selected: null,
    detail: null, timeline: [], shares: [], cameras: [], viewer: null, filter: "open", generation: 0,
    controller: null, streamState: "reconnecting", problem: "", chartEntity: null, signedInResolve: null,
    taxonomy: new Map(), clusterLabels: new Map(), chosen: new Set(), acknowledged: new Map(),
    note: "", comment: "", packages: [], greenWaves: new Map(),
  };

  // -- helpers ----------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const t = (key) => TEXT[state.language][key] ?? TEXT.ko[key] ?? key;
  const pick = (pair) => (pair && typeof pair === "object" ? pair[state.language] ?? pair.ko ?? "" : pair ?? "");
  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };
  const button = (text, className, onClick) => {
    const node = element("button", className, text);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  };
  const canManage = () => state.me && state.me.roles.some((r) => r === "admin" || r === "operator");
  const isAgency = () => state.me && !canManage() && state.me.roles.includes("agency");
  const locale = () => (state.language === "ko" ? "ko-KR" : "en-GB");
  const TIME = { timeZone: "Asia/Seoul", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  const clockTime = (iso) => new Date(iso).toLocaleTimeString(locale(), TIME);
  const dateTime = (iso) => new Date(iso).toLocaleString(locale(), { timeZone: "Asia/Seoul", hour12: false });
  function duration(ms) {
    const seconds = Math.round(ms / 1000);
    if (seconds < 90) return `${seconds}${t("secondsShort")}`;
    if (seconds < 5400) return `${Math.round(seconds / 60)}${t("minutesShort")}`;
    return `${(seconds / 3600).toFixed(1)}${t("hoursShort")}`;
  }
  const pointOf = (geometry) => {
    if (!geometry) return null;
    if (geometry.type === "Point") return geometry.coordinates;
    if (geometry.type === "Polygon") return geometry.coordinates[0][0];
    if (geometry.type === "LineString") return geometry.coordinates[0];
    return null;
  };

  function credential() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE.credential));
    } catch {
      return null;
    }
  }

  function headers(extra = {}) {
    const given = { Accept: "application/json", ...extra };
    const kept = credential();
    if (kept && kept.secret) {
      if (kept.kind === "bearer") given.Authorization = `Bearer ${kept.secret}`;
      else given["X-API-Key"] = kept.secret;
    }
    const tenant = sessionStorage.getItem(STORE.tenant);
    if (tenant) given["NGSILD-Tenant"] = tenant;
    return given;
  }

  async function call(method, url, body, signal, extra = {}) {
    const given = body !== undefined ? { "Content-Type": "application/json", ...extra } : extra;
    const init = { method, headers: headers(given), signal };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(url, init);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((data && (data.detail || data.title)) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // -- signing in ----------------------------------------------------------------------------------
  async function whoAmI() {
    const me = await call("GET", "/auth/me");
    if (!me.roles.some((r) => ["admin", "operator", "analyst", "agency"].includes(r))) {
      const error = new Error(t("noAccess"));
      error.status = 403;
      throw error;
    }
    return me;
  }

  async function signIn(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    const tenant = $("login-tenant").value.trim();
    try {
      const issued = await call("POST", "/auth/login", { name: $("login-name").value.trim(), password: $("login-password").value });
      sessionStorage.setItem(STORE.credential, JSON.stringify({ kind: "bearer", secret: issued.accessToken }));
      if (tenant) sessionStorage.setItem(STORE.tenant, tenant);
      else sessionStorage.removeItem(STORE.tenant);
      state.me = await whoAmI();
    } catch (error) {
      sessionStorage.removeItem(STORE.credential);
      $("login-error").textContent = error.status === 401 ? t("loginFailed") : error.message;
      return;
    }
    $("login-password").value = "";
    enter();
  }

  function enter(mapStarted = false) {
    document.body.classList.remove("signed-out");
    renderUser();
    if (mapStarted) {
      // the live map already reads with this credential
    } else if (state.signedInResolve) {
      state.signedInResolve(); // the live map starts now, with this credential
      state.signedInResolve = null;
    } else {
      window.livemap.restart();
    }
    startIncidents();
  }

  function signOut(reason = "") {
    sessionStorage.removeItem(STORE.credential);
    sessionStorage.removeItem(STORE.tenant);
    state.me = null;
    state.generation += 1;
    state.controller?.abort();
    for (const marker of state.markers.values()) marker.remove();
    state.markers.clear();
    state.incidents.clear();
    state.acknowledged.clear();
    state.agencyView = undefined;
    state.selected = null;
    renderList();
    renderDetail();
    document.body.classList.add("signed-out");
    $("login-error").textContent = typeof reason === "string" ? reason : "";
    window.livemap.restart();
  }

  function renderUser() {
    if (!state.me) return;
    const tenant = state.me.tenant || "default";
    $("user").textContent = `${state.me.name} · ${state.me.roles.join(", ")} · ${tenant}`;
  }

  // -- incidents: list, then stream ------------------------------------------------------------------
  async function loadIncidents(signal) {
    const query = new URLSearchParams({ status: OPEN.join(","), limit: "200" });
    const found = await call("GET", `/ops/v1/incidents?${query}`, undefined, signal);
    const seen = new Set();
    for (const incident of found) {
      seen.add(incident.id);
      upsertIncident(incident);
    }
    for (const id of [...state.incidents.keys()]) if (!seen.has(id)) dropIncident(id);
    renderList();
    // What an agency may see on the map follows its shares: when they change, load it again.
    const key = [...seen].sort().join(" ");
    if (isAgency() && state.agencyView !== undefined && state.agencyView !== key) window.livemap.restart();
    state.agencyView = key;
  }

  function upsertIncident(incident) {
    const old = state.incidents.get(incident.id) ?? {};
    const merged = { ...old, ...incident };
    // Time to acknowledge: kept for incidents seen acknowledged, also once they are closed.
    if (merged.acknowledgedAt && merged.createdAt) {
      state.acknowledged.set(merged.id, Date.parse(merged.acknowledgedAt) - Date.parse(merged.createdAt));
    }
    state.incidents.set(incident.id, merged);
    drawMarker(merged);
  }

  function dropIncident(id) {
    state.incidents.delete(id);
    state.markers.get(id)?.remove();
    state.markers.delete(id);
    if (state.selected === id) {
      state.selected = null;
      state.detail = null;
      renderDetail();
    }
  }

  function onIncidentEvent(fact) {
    const summary = fact.incident;
    if (!summary) return;
    if (summary.status === "closed") {
      dropIncident(summary.id);
    } else {
      const known = state.incidents.get(summary.id);
      const extra = {};
      if (fact.event === "created") extra.createdAt = fact.at;
      if (fact.event === "acknowledged") extra.acknowledgedAt = fact.at;
      upsertIncident({ ...(known ? {} : { createdAt: fact.at }), ...summary, ...extra });
    }
    renderList();
    if (state.selected === summary.id) refreshDetail();
  }

  const parseBlock = (block) => window.livemap.parseEventBlock(block);

  async function follow(generation, signal, opened) {
    let lastId = null;
    let backoff = 1000;
    while (generation === state.generation) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (lastId) extra["Last-Event-ID"] = lastId;
        const response = await fetch("/ops/v1/incidents/stream", { headers: headers(extra), signal, cache: "no-store" });
        if (response.status === 401) {
          signOut(t("expired")); // the token ran out or was revoked: sign in again
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        backoff = 1000;
        performance.mark("dashboard:stream-open");
        setStream("live");
        opened();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const event = parseBlock(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (event.id !== null) lastId = event.id;
            if (event.name === "incident") onIncidentEvent(JSON.parse(event.data));
            // An agency's view changes without an event it may see (a share ends): look again.
            else if (event.name === "heartbeat" && isAgency()) loadIncidents(signal).catch(() => {});
          }
        }
      } catch (error) {
        if (signal.aborted) return;
      }
      if (generation !== state.generation) return;
      setStream("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  // The stream is opened first (from now), then the list read: nothing falls between them.
  // None of it waits for the map: the markers are placed once it is ready.
  async function startIncidents() {
    state.generation += 1;
    const generation = state.generation;
    state.controller?.abort();
    const controller = new AbortController();
    state.controller = controller;
    window.livemap.mapReady.then(() => {
      if (!state.labelling) {
        state.labelling = true;
        const map = window.livemap.state.map;
        map.on("idle", labelClusters);
        // The map's box changes with the page's layout (the sign-in, a phone's sheet): follow it.
        new ResizeObserver(() => map.resize()).observe($("map"));
        map.resize();
      }
      for (const incident of state.incidents.values()) drawMarker(incident);
    });
    const opened = new Promise((resolve) => follow(generation, controller.signal, resolve));
    await Promise.all([loadTaxonomy(), opened]);
    if (generation !== state.generation) return;
    await loadIncidents(controller.signal).catch(() => {});
  }

  function setStream(value) {
    state.streamState = value;
    const pill = $("ops-live");
    pill.className = `pill ${value}`;
    pill.textContent = `● ${t(value)}`;
  }

  // -- the map's incident markers ---------------------------------------------------------------------
  function icon(type, severity) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    const circle = document.createElementNS(svg.namespaceURI, "circle");
    circle.setAttribute("cx", "12");
    circle.setAttribute("cy", "12");
    circle.setAttribute("r", "11");
    circle.setAttribute("fill", SEVERITY_COLOURS[severity] ?? "#64748b");
    circle.setAttribute("stroke", "#fff");
    circle.setAttribute("stroke-width", "1.5");
    const path = document.createElementNS(svg.namespaceURI, "path");
    path.setAttribute("d", ICONS[type] ?? ICONS.other);
    path.setAttribute("fill", "#fff");
    path.setAttribute("transform", "translate(2.4 2.4) scale(0.8)");
    svg.append(circle, path);
    return svg;
  }

  function drawMarker(incident) {
    const map = window.livemap.state.map;
    const position = pointOf(incident.location);
    if (!map || !position) return;
    let marker = state.markers.get(incident.id);
    if (!marker) {
      const node = element("div", "incident-marker");
      node.dataset.incident = incident.id;
      node.addEventListener("click", (event) => {
        event.stopPropagation();
        select(incident.id, false);
      });
      marker = new maplibregl.Marker({ element: node, anchor: "center" }).setLngLat(position).addTo(map);
      state.markers.set(incident.id, marker);
      state.shownAt[incident.id] = Date.now();
    }
    const node = marker.getElement();
    node.replaceChildren(icon(incident.type, incident.severity));
    node.className = `incident-marker ${incident.status === "new" ? "new" : ""} ${state.selected === incident.id ? "selected" : ""}`;
    node.style.color = SEVERITY_COLOURS[incident.severity] ?? "#64748b";
    node.title = titleOf(incident);
    marker.setLngLat(position);
  }

  // -- cluster counts: HTML labels over the clusters in view (the style has no glyphs) -----------
  function labelClusters() {
    const live = window.livemap.state;
    const map = live.map;
    if (!map) return;
    const layers = [...live.clustered].map((id) => `live-${id}-clusters`).filter((id) => map.getLayer(id));
    const seen = new Set();
    for (const feature of map.queryRenderedFeatures({ layers })) {
      const key = `${feature.source}/${feature.properties.cluster_id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let label = state.clusterLabels.get(key);
      if (!label) {
        const node = element("div", "cluster-count");
        label = new maplibregl.Marker({ element: node, anchor: "center" }).setLngLat(feature.geometry.coordinates).addTo(map);
        state.clusterLabels.set(key, label);
      }
      label.getElement().textContent = Number(feature.properties.point_count).toLocaleString();
      label.setLngLat(feature.geometry.coordinates);
    }
    for (const [key, label] of state.clusterLabels) {
      if (!seen.has(key)) {
        label.remove();
        state.clusterLabels.delete(key);
      }
    }
  }

  // -- the list --------------------------------------------------------------------------------------------
  function sortedIncidents() {
    const shown = [...state.incidents.values()].filter((i) => state.filter !== "new" || i.status === "new");
    return shown.sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity)
      || String(b.createdAt ?? "").localeCompare(String(a.createdAt ?? "")));
  }

  function typeName(incident) {
    const kind = state.taxonomy.get(incident.type);
    const subtype = kind?.subtypes.find((s) => s.id === incident.subtype);
    const parts = [
      pick(incident.typeName) || pick(kind?.name) || incident.type,
      pick(incident.subtypeName) || pick(subtype?.name) || incident.subtype,
    ];
    return parts.filter(Boolean).join(" · ");
  }

  // An incident opened from an alert is titled by its subtype's id: name it in words instead.
  function titleOf(incident) {
    const title = incident.title;
    if (title && title !== incident.type && title !== incident.subtype) return title;
    const kind = state.taxonomy.get(incident.type);
    const subtype = kind?.subtypes.find((s) => s.id === incident.subtype);
    return pick(subtype?.name) || pick(kind?.name) || title || incident.id;
  }

  async function loadTaxonomy() {
    const found = await call("GET", "/ops/v1/taxonomy").catch(() => null);
    for (const kind of found?.types ?? []) state.taxonomy.set(kind.id, kind);
  }

  function renderFilters() {
    const box = $("filters");
    box.replaceChildren();
    for (const [id, label] of [["open", t("open")], ["new", t("mine")]]) {
      const chip = button(label, state.filter === id ? "on" : "", () => {
        state.filter = id;
        renderFilters();
        renderList();
      });
      box.append(chip);
    }
  }

  function renderList() {
    const list = $("incident-list");
    list.replaceChildren();
    const shown = sortedIncidents();
    $("incident-count").textContent = String(state.incidents.size);
    if (!shown.length) list.append(element("li", "empty", t("none")));
    for (const incident of shown) {
      const item = element("li", `sev-${incident.severity} ${state.selected === incident.id ? "selected" : ""}`);
      item.dataset.incident = incident.id;
      const badge = element("span", "icon incident-icon");
      badge.append(icon(incident.type, incident.severity));
      item.append(badge);
      item.append(element("span", "title", titleOf(incident)));
      item.append(element("span", `status ${incident.status}`, t(`status:${incident.status}`)));
      const meta = [typeName(incident), incident.zone, incident.createdAt ? clockTime(incident.createdAt) : null, incident.id];
      item.append(element("span", "meta", meta.filter(Boolean).join(" · ")));
      item.addEventListener("click", () => select(incident.id, true));
      list.append(item);
    }
    updateKpis();
  }

  // -- the incident panel -------------------------------------------------------------------------------
  async function select(id, fly) {
    state.selected = id;
    state.viewer = null;
    state.problem = "";
    state.cameras = [];
    state.chosen.clear();
    state.note = "";
    state.comment = "";
    for (const incident of state.incidents.values()) drawMarker(incident);
    renderList();
    const incident = state.incidents.get(id);
    const position = incident && pointOf(incident.location);
    if (fly && position) window.livemap.state.map.flyTo({ center: position, zoom: Math.max(window.livemap.state.map.getZoom(), 16) });
    await refreshDetail();
    if (canManage() && state.detail) {
      state.cameras = await call("GET", `/ops/v1/incidents/${encodeURIComponent(id)}/cameras`).catch(() => []);
      renderDetail();
    }
  }

  async function refreshDetail() {
    const id = state.selected;
    if (!id) return;
    const base = `/ops/v1/incidents/${encodeURIComponent(id)}`;
    try {
      const [detail, timeline, shares, packages] = await Promise.all([
        call("GET", base), call("GET", `${base}/timeline`), call("GET", `${base}/shares`).catch(() => []),
        call("GET", `${base}/packages`).catch(() => []),
      ]);
      if (state.selected !== id) return;
      state.detail = detail;
      state.timeline = timeline;
      state.shares = shares;
      state.packages = packages;
      upsertIncident(detail);
    } catch (error) {
      if (error.status === 404) dropIncident(id);
      state.detail = null;
    }
    renderDetail();
  }

  async function act(action, body) {
    const detail = state.detail;
    try {
      await call("POST", `/ops/v1/incidents/${encodeURIComponent(detail.id)}/${action}`, { version: detail.version, ...body });
      state.problem = "";
      state.note = "";
    } catch (error) {
      state.problem = error.message;
    }
    await refreshDetail();
  }

  async function tick(step, done) {
    const detail = state.detail;
    try {
      await call("PUT", `/ops/v1/incidents/${encodeURIComponent(detail.id)}/sop/${encodeURIComponent(step)}`, { done, version: detail.version });
      state.problem = "";
    } catch (error) {
      state.problem = error.message;
    }
    await refreshDetail();
  }

  async function shareCameras(agency, cameras) {
    if (!cameras.length) {
      state.problem = t("selectCameras");
      renderDetail();
      return;
    }
    try {
      await call("POST", `/ops/v1/incidents/${encodeURIComponent(state.detail.id)}/shares`, { agency, cameras });
      state.problem = "";
      state.chosen.clear();
    } catch (error) {
      state.problem = error.message;
    }
    await refreshDetail();
  }

  async function endShare(shareId) {
    try {
      await call("DELETE", `/ops/v1/incidents/${encodeURIComponent(state.detail.id)}/shares/${encodeURIComponent(shareId)}`);
    } catch (error) {
      state.problem = error.message;
    }
    await refreshDetail();
  }

  async function openVideo(camera) {
    try {
      const link = await call("POST", `/ops/v1/incidents/${encodeURIComponent(state.detail.id)}/cameras/${encodeURIComponent(camera)}/link`, { mode: "live" });
      state.viewer = { camera, href: link.href, expiresAt: link.expiresAt };
      state.problem = "";
    } catch (error) {
      state.viewer = null;
      state.problem = error.message;
    }
    renderDetail();
  }

  async function comment(text) {
    if (!text.trim()) return;
    try {
      await call("POST", `/ops/v1/incidents/${encodeURIComponent(state.detail.id)}/comments`, { text });
      state.comment = "";
    } catch (error) {
      state.problem = error.message;
    }
    await refreshDetail();
  }

  function section(box, title) {
    box.append(element("h4", "", title));
  }

  const linked = window.dashboardLinked.create({
    state, call, element, button, section, pick, clockTime, canManage, refresh: () => refreshDetail(),
  });

  function renderDetail() {
    const focused = document.activeElement?.id; // kept through the redraw (a note being typed)
    drawDetail();
    if (focused && $(focused) && document.activeElement?.id !== focused) $(focused).focus();
  }

  function drawDetail() {
    const box = $("detail");
    const detail = state.detail;
    box.hidden = !detail;
    box.replaceChildren();
    if (!detail) {
      linked.draw([]);
      return;
    }
    const head = element("header");
    const top = element("div", "line");
    top.append(element("span", `badge ${detail.severity}`, t(`severity:${detail.severity}`)));
    top.append(element("span", `status ${detail.status}`, t(`status:${detail.status}`)));
    if (detail.escalationLevel) top.append(element("span", "badge high", `${t("escalated")} ${detail.escalationLevel}`));
    top.append(element("span", "", detail.id));
    head.append(top, element("h3", "", titleOf(detail)));
    const where = [typeName(detail), detail.zone && `${t("zone")} ${detail.zone}`, dateTime(detail.createdAt)];
    head.append(element("div", "line", where.filter(Boolean).join(" · ")));
    if (detail.description) head.append(element("div", "line", detail.description));
    box.append(head);
    if (state.problem) box.append(element("p", "problem", state.problem));

    if (canManage()) {
      const note = element("input");
      note.type = "text";
      note.id = "action-note";
      note.placeholder = t("note");
      note.value = state.note; // what was typed survives the panel being drawn again
      note.addEventListener("input", () => { state.note = note.value; });
      const actions = element("div", "actions");
      for (const action of detail.actions) {
        const kind = action === "close" ? "danger" : action === "acknowledge" ? "" : "secondary";
        const control = button(t(action), kind, () => act(action, state.note.trim() ? { note: state.note.trim() } : {}));
        control.dataset.action = action;
        actions.append(control);
      }
      box.append(actions, note);
    }

    section(box, t("sop"));
    const sop = element("ul", "sop");
    for (const step of detail.sop) {
      const item = element("li", step.done ? "done" : "");
      item.dataset.step = step.id;
      const label = element("label");
      const check = element("input");
      check.type = "checkbox";
      check.checked = step.done;
      check.disabled = !canManage() || detail.status === "closed";
      check.addEventListener("change", () => tick(step.id, check.checked));
      const text = element("span");
      text.append(element("span", "name", pick(step.name)));
      if (step.done && step.by) text.append(element("span", "by", `${step.by} · ${clockTime(step.at)}`));
      label.append(check, text);
      item.append(label);
      sop.append(item);
    }
    box.append(sop);

    renderVideo(box, detail);
    linked.render(box, detail);

    section(box, t("timeline"));
    const timeline = element("ol", "timeline");
    for (const event of [...state.timeline].reverse()) {
      const item = element("li", LIFECYCLE.has(event.event) ? "lifecycle" : VIDEO.has(event.event) ? "video" : "");
      item.append(element("time", "", clockTime(event.at)));
      item.append(element("span", "", t(`event:${event.event}`)));
      const what = event.details?.text ?? event.details?.note ?? event.details?.step ?? (event.details?.cameras ? event.details.cameras.map(shortId).join(", ") : "");
      if (what) item.append(element("span", "", ` — ${what}`));
      item.append(element("span", "actor", ` · ${event.actor}`));
      timeline.append(item);
    }
    box.append(timeline);
    const form = element("form", "comment-form");
    const input = element("input");
    input.type = "text";
    input.id = "comment-text";
    input.placeholder = t("comment");
    input.value = state.comment;
    input.addEventListener("input", () => { state.comment = input.value; });
    form.append(input, button(t("send"), "", () => form.requestSubmit()));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      comment(input.value);
    });
    box.append(form);
  }

  const shortId = (id) => String(id).split(":").slice(3).join(":") || String(id);
  const cameraName = (id) => {
    const entity = window.livemap.entity(id);
    const name = entity?.attributes.cameraName?.value ?? entity?.attributes.name?.value;
    return name ? String(name) : shortId(id);
  };

  function renderVideo(box, detail) {
    const active = state.shares.filter((s) => s.active);
    if (canManage() && (state.cameras.length || state.shares.length)) {
      section(box, t("cameras"));
      const list = element("ul", "cameras");
      for (const camera of state.cameras) {
        const item = element("li");
        item.dataset.camera = camera.id;
        const check = element("input");
        check.type = "checkbox";
        check.value = camera.id;
        check.checked = state.chosen.has(camera.id); // kept while the panel is drawn again
        check.addEventListener("change", () => (check.checked ? state.chosen.add(camera.id) : state.chosen.delete(camera.id)));
        item.append(check, element("span", "name", camera.name || shortId(camera.id)));
        if (camera.facesIncident) item.append(element("span", "faces", `◎ ${t("faces")}`));
        item.append(element("span", "muted", `${Math.round(camera.distance)}${t("metres")}`));
        item.append(button(t("video"), "", () => openVideo(camera.id)));
        list.append(item);
      }
      box.append(list);
      if (state.cameras.length && detail.status !== "closed") {
        const form = element("div", "share-form");
        const agency = element("input");
        agency.type = "text";
        agency.id = "share-agency";
        agency.value = "police";
        agency.setAttribute("aria-label", t("agency"));
        form.append(agency, button(t("share"), "", () => {
          shareCameras(agency.value.trim(), [...state.chosen]);
        }));
        form.querySelector("button").id = "share-button";
        box.append(form);
      }
    }
    if (state.shares.length) {
      section(box, isAgency() ? t("sharedCameras") : t("shares"));
      const list = element("ul", "shares");
      for (const share of state.shares) {
        if (isAgency()) {
          for (const camera of share.cameras) {
            const item = element("li");
            item.dataset.camera = camera;
            item.append(element("span", "what", cameraName(camera)));
            item.append(element("span", "muted", `${clockTime(share.expiresAt)} ${t("until")}`));
            item.append(button(t("openVideo"), "", () => openVideo(camera)));
            list.append(item);
          }
          continue;
        }
        const item = element("li", share.active ? "" : "ended");
        item.dataset.share = share.id;
        const text = `${share.agency} · ${share.cameras.map(cameraName).join(", ")} · ${share.active ? `${clockTime(share.expiresAt)} ${t("until")}` : t("ended")}`;
        item.append(element("span", "what", text));
        if (share.active && canManage()) item.append(button(t("endShare"), "", () => endShare(share.id)));
        list.append(item);
      }
      box.append(list);
    }
    if (state.viewer && (canManage() || active.length)) {
      const viewer = element("div", "viewer");
      const image = element("img");
      image.src = state.viewer.href;
      image.alt = shortId(state.viewer.camera);
      viewer.append(image, element("div", "caption", `${cameraName(state.viewer.camera)} · ${clockTime(state.viewer.expiresAt)} ${t("until")}`));
      box.append(viewer);
    }
  }

  // -- KPI tiles --------------------------------------------------------------------------------------------
  function tile(id, value, sub, level) {
    const node = $(id);
    node.querySelector(".value").textContent = value;
    node.querySelector(".sub").textContent = sub;
    node.classList.toggle("alarm", level === "alarm");
    node.classList.toggle("warn", level === "warn");
  }

  function updateKpis() {
    const incidents = [...state.incidents.values()].filter((i) => i.status !== "resolved");
    const fresh = incidents.filter((i) => i.status === "new").length;
    const critical = incidents.filter((i) => i.severity === "critical").length;
    tile("kpi-open", String(incidents.length), `${t("newCount")} ${fresh} · ${t("criticalCount")} ${critical}`,
      critical ? "alarm" : fresh ? "warn" : "");
    const waits = [...state.acknowledged.values()].filter((ms) => ms >= 0).sort((a, b) => a - b);
    const median = waits.length ? waits[Math.floor(waits.length / 2)] : null;
    tile("kpi-ack", median === null ? "–" : duration(median), `${waits.length}${t("basedOn")}`, median > 600000 ? "warn" : "");
    const live = window.livemap?.state;
    if (!live || !live.entities) return;
    let devices = 0, troubled = 0, free = 0, total = 0, lots = 0, detectors = 0, congested = 0;
    for (const entity of live.entities.values()) {
      const layer = entity.layer.id;
      if (layer === "places") continue;
      if (layer === "parking") {
        const spaces = Number(entity.attributes.totalSpotNumber?.value);
        const open = Number(entity.attributes.availableSpotNumber?.value);
        if (Number.isFinite(spaces) && Number.isFinite(open) && spaces > 0) {
          total += spaces;
          free += Math.min(open, spaces);
          lots += 1;
        }
        continue;
      }
      devices += 1;
      if (entity.stale || entity.status === "fault" || entity.status === "unknown") troubled += 1;
      if (layer === "traffic" && entity.status !== "unknown") {
        detectors += 1;
        if (entity.status === "congested") congested += 1;
      }
    }
    tile("kpi-offline", troubled.toLocaleString(locale()), t("devicesOf").replace("{n}", devices.toLocaleString(locale())),
      devices && troubled / devices > 0.1 ? "warn" : "");
    const occupancy = total ? Math.round((100 * (total - free)) / total) : null;
    tile("kpi-parking", occupancy === null ? "–" : `${occupancy}%`, `${lots}${t("ofLots")}`, occupancy > 90 ? "warn" : "");
    const share = detectors ? Math.round((100 * congested) / detectors) : null;
    const detectorText = t("detectorsOf").replace("{n}", String(detectors)).replace("{c}", String(congested));
    tile("kpi-congestion", share === null ? "–" : `${share}%`, detectorText, share > 30 ? "warn" : "");
  }

  // -- charts from the temporal API ---------------------------------------------------------------------
  const MEASURES = [
    ["availableSpotNumber", { ko: "대", en: "free" }], ["averageVehicleSpeed", "km/h"], ["intensity", ""], ["pm10", "µg/m³"],
    ["pm25", "µg/m³"], ["LAeq", "dB"], ["fillingLevel", ""], ["peopleCount", ""], ["illuminanceLevel", ""],
    ["occupancy", ""], ["eventConfidence", ""],
  ];

  function instancesOf(attribute) {
    if (!attribute) return [];
    if (Array.isArray(attribute.values)) return attribute.values.map((pair) => [Date.parse(pair[1]), Number(pair[0])]);
    const list = Array.isArray(attribute) ? attribute : [attribute];
    return list.map((i) => [Date.parse(i.observedAt), Number(i.value)]);
  }

  async function chart(entityId) {
    const live = window.livemap.state;
    const entity = live.entities.get(entityId);
    if (!entity) return;
    const measure = MEASURES.find(([name]) => typeof entity.attributes[name]?.value === "number");
    const names = [entity.attributes.name?.value, entity.attributes.alternateName?.value];
    if (state.language === "en") names.reverse();
    const title = String(names.find((n) => typeof n === "string" && n) ?? shortId(entityId));
    state.chartEntity = entityId;
    if (!measure) {
      $("trend-title").textContent = `${title} · ${t("noHistory")}`;
      window.opsCharts.line($("chart"), [], { empty: t("noHistory") });
      return;
    }
    const [name, unit] = measure;
    $("trend-title").textContent = `${title} · ${name}`;
    const since = new Date(live.cityClock ? live.cityClock.observed - 6 * 3600000 : Date.now() - 6 * 3600000);
    const query = new URLSearchParams({ attrs: name, timerel: "after", timeAt: since.toISOString(), options: "temporalValues", lastN: "720" });
    const link = `<${live.style.metadata["smartcity:context"]}>; rel="http://www.w3.org/ns/json-ld#context"`;
    let points = [];
    try {
      const url = `/ngsi-ld/v1/temporal/entities/${encodeURIComponent(entityId)}?${query}`;
      const history = await call("GET", url, undefined, undefined, { Link: link });
      const key = Object.keys(history).find((k) => k === name || k.endsWith(`/${name}`) || k.endsWith(`:${name}`));
      points = instancesOf(history[key]).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])).sort((a, b) => a[0] - b[0]);
    } catch {
      points = [];
    }
    if (state.chartEntity !== entityId) return;
    window.opsCharts.line($("chart"), points, { unit: pick(unit), language: state.language, empty: t("noHistory") });
  }

  // -- the page --------------------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = state.language;
    document.title = `${t("title")} · ${state.language === "ko" ? TEXT.en.title : TEXT.ko.title}`;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    $("lang-toggle").textContent = t("language");
    $("login-lang").textContent = t("otherLanguage");
    setStream(state.streamState);
    renderFilters();
    renderList();
    renderDetail();
    if (!state.chartEntity) $("trend-title").textContent = t("chooseEntity");
    else chart(state.chartEntity);
  }

  function tickClock() {
    $("clock").textContent = `${new Date().toLocaleTimeString(locale(), TIME)} KST`;
  }

  function chooseLanguage() {
    const asked = new URLSearchParams(location.search).get("lang");
    return (asked || localStorage.getItem("smartcity.map.language") || "ko") === "en" ? "en" : "ko";
  }

  // Before the live map's script runs: it embeds itself in this page and waits for the sign-in.
  const signedIn = new Promise((resolve) => {
    state.signedInResolve = resolve;
  });
  window.livemapOptions = {
    style: "/map/style.json?cluster=true",
    language: "ko",
    signedIn,
    padding: () => (window.innerWidth <= 900
      ? { top: 20, bottom: 20, left: 10, right: 10 } // the incidents below the map
      : { top: 30, bottom: 30, left: 250, right: 30 }),
  };

  async function main() {
    state.language = chooseLanguage();
    $("login-form").addEventListener("submit", signIn);
    const toggle = () => window.livemap.setLanguage(state.language === "ko" ? "en" : "ko");
    $("lang-toggle").addEventListener("click", toggle);
    $("login-lang").addEventListener("click", toggle);
    $("sign-out").addEventListener("click", signOut);
    document.addEventListener("livemap:language", (event) => {
      state.language = event.detail;
      applyLanguage();
    });
    document.addEventListener("livemap:select", (event) => chart(event.detail));
    applyLanguage();
    tickClock();
    setInterval(tickClock, 1000);
    setInterval(updateKpis, KPI_MS);
    setInterval(() => isAgency() && state.controller && loadIncidents(state.controller.signal).catch(() => {}), AGENCY_REFRESH_MS);
    if (credential()) {
      // A kept credential: the map starts reading at once (it falls back to the public view if
      // the credential is refused, and signing in again restarts it).
      state.signedInResolve();
      state.signedInResolve = null;
      try {
        state.me = await whoAmI();
        enter(true);
        return;
      } catch {
        sessionStorage.removeItem(STORE.credential);
      }
    }
    document.body.classList.add("signed-out");
    $("login-name").focus();
  }

  window.dashboard = {
    state,
    ready: new Promise((resolve) => document.addEventListener("DOMContentLoaded", () => resolve(main()))),
    shownAt: (id) => state.shownAt[id] ?? null,
    select: (id) => select(id, true),
    chart,
  };
})();
