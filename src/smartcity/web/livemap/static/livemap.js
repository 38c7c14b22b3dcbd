// The live map: the district from its own GeoJSON, its entities from the NGSI-LD API, their
// changes from /map/stream (server-sent events read with fetch, so a credential can be sent).
// Entity data is only ever put on the page as text (textContent), never as HTML.
// Another page (the operations dashboard) embeds it by setting window.livemapOptions first:
// `style` (the style's address), `language` (the default), `padding()` (around the district).
(() => {
  "use strict";

  const OPTIONS = window.livemapOptions ?? {};

  const FLUSH_MS = 400; // at most this often the map redraws, however many changes arrive
  const STALE_CHECK_MS = 20000;
  const READS_WAIT_MS = 1500; // at most this long the map waits for the entities' reads to go out
  const PARALLEL_PAGES = 4; // pages of entities read at once (the two streams hold 2 of 6 connections)
  const STORE = { credential: "smartcity.map.credential", tenant: "smartcity.map.tenant" };
  const LOCAL = { language: "smartcity.map.language", hidden: "smartcity.map.hidden" };

  const TEXT = {
    ko: {
      title: "창동 실시간 지도", layers: "레이어", legend: "범례", access: "접근 권한",
      credentialKind: "인증 방식", credential: "키 또는 토큰", tenant: "테넌트 (선택)",
      signIn: "적용", signOut: "지우기", home: "처음으로", language: "EN",
      loading: "불러오는 중", live: "실시간", reconnecting: "다시 연결하는 중",
      failed: "연결 실패", updatesPerSecond: "건/초", anonymous: "익명: 공개된 유형만 보입니다.",
      signedIn: "인증됨", rejected: "자격 증명이 거부되었습니다. 공개된 유형만 보입니다.",
      tenantName: "테넌트", defaultTenant: "기본", stale: "오래된 측정값", staleAfter: "분 넘게 갱신 없음",
      observed: "관측", modified: "갱신", ago: "전", justNow: "방금", minutes: "분", hours: "시간",
      days: "일", seconds: "초", noPosition: "위치를 알 수 없는 항목", roadLanes: "차로",
      oneway: "일방통행", speedLimit: "제한 속도", zone: "행정동", nothingVisible: "보이는 항목 없음",
    },
    en: {
      title: "Changdong live map", layers: "Layers", legend: "Legend", access: "Access",
      credentialKind: "Credential", credential: "API key or token", tenant: "Tenant (optional)",
      signIn: "Apply", signOut: "Clear", home: "Home", language: "한국어",
      loading: "Loading", live: "Live", reconnecting: "Reconnecting", failed: "Connection failed",
      updatesPerSecond: "updates/s", anonymous: "Anonymous: only public types are shown.",
      signedIn: "Signed in", rejected: "The credential was refused; only public types are shown.",
      tenantName: "tenant", defaultTenant: "default", stale: "stale reading", staleAfter: " min without update",
      observed: "observed", modified: "updated", ago: "ago", justNow: "just now", minutes: "min",
      hours: "h", days: "d", seconds: "s", noPosition: "without a position", roadLanes: "lanes",
      oneway: "one-way", speedLimit: "speed limit", zone: "dong", nothingVisible: "nothing visible",
    },
  };

  const ATTRIBUTE_NAMES = {
    availableSpotNumber: ["빈 자리", "free spaces"], totalSpotNumber: ["전체 면수", "spaces"],
    averageVehicleSpeed: ["평균 속도", "average speed"], speed: ["속도", "speed"],
    intensity: ["교통량", "vehicles"], occupancy: ["점유율", "occupancy"],
    powerState: ["전원", "power"], illuminanceLevel: ["밝기", "light level"],
    fillingLevel: ["채움 정도", "filling level"], cargoWeight: ["무게", "weight"],
    pm10: ["미세먼지 PM10", "PM10"], pm25: ["초미세먼지 PM2.5", "PM2.5"], no2: ["이산화질소", "NO₂"],
    o3: ["오존", "O₃"], LAeq: ["소음", "noise"], noiseLevel: ["소음", "noise"],
    temperature: ["기온", "temperature"], relativeHumidity: ["습도", "humidity"],
    humidity: ["습도", "humidity"], status: ["상태", "status"], deviceState: ["기기 상태", "device state"],
    on: ["작동", "on"], cameraUsage: ["용도", "use"], cameraType: ["종류", "type"],
    category: ["분류", "category"], areaServed: ["행정동", "dong"], dateObserved: ["관측 시각", "observed"],
    controlledProperty: ["측정 항목", "measures"], batteryLevel: ["배터리", "battery"],
    airQualityLevel: ["대기질", "air quality"], serialNumber: ["일련번호", "serial number"],
    roadDirection: ["방향", "direction"], refRoadSegment: ["도로 구간", "road segment"],
    stationType: ["노선 종류", "station type"], capacity: ["수용 인원", "capacity"],
    allowedVehicleType: ["허용 차종", "vehicles allowed"], layout: ["구조", "layout"],
    occupancyDetectionType: ["점유 감지 방식", "occupancy detection"],
    cameraOrientation: ["방향", "orientation"], viewDirection: ["촬영 방향 (°)", "view direction (°)"],
    cameraNum: ["번호", "number"], lanternHeight: ["등주 높이", "lantern height"],
    locationCategory: ["설치 위치", "placed at"], binCapacity: ["용량", "capacity"],
    storedWasteKind: ["폐기물 종류", "waste kind"], storedWasteOrigin: ["배출원", "waste origin"],
  };
  const UNITS = {
    KMH: "km/h", GQ: "µg/m³", CEL: "°C", P1: "%", "2N": "dB", KGM: "kg", MTR: "m", SEC: "s",
    C62: "", E32: "/h", LTR: "L", HUR: "h", MIN: "min",
  };
  const HIDDEN_ATTRIBUTES = new Set([
    "location", "name", "alternateName", "description", "source", "createdAt", "modifiedAt",
    "startPoint", "endPoint", "cameraName", "streetPoleNum", "refParkingSite",
  ]);
  const STALE_MEASURES = {
    parking: ["availableSpotNumber"],
    traffic: ["averageVehicleSpeed", "speed", "intensity"],
    air: ["pm10", "pm25", "LAeq", "noiseLevel"],
  };
  const WASTE_FAULTS = new Set(["burning", "damaged", "dropped", "moved"]);

  const state = {
    language: "ko", map: null, style: null, config: null, generation: 0, controller: null,
    layers: [], layerById: new Map(), hidden: new Set(), entities: new Map(), members: new Map(),
    pending: new Map(), buffer: [], loading: true, dirty: new Set(), flushTimer: null, lastFlush: 0,
    roads: new Map(), zones: new Map(), labels: [], keys: new Map(), restyled: new Map(),
    trafficDirty: false, popup: null, popupId: null, cityClock: null, clustered: new Set(),
    connection: "loading", updates: 0, received: 0, flushMs: 0, rate: 0, rejected: false, loaded: 0, total: null,
  };

  // -- small helpers ----------------------------------------------------------------------------
  const t = (key) => TEXT[state.language][key] ?? key;
  const $ = (id) => document.getElementById(id);
  const localName = (iri) => String(iri).replace(/^.*[/#:]/, "");
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const bilingual = (pair) => (isObject(pair) ? pair[state.language] ?? pair.ko ?? "" : String(pair));
  const readJSON = (key, fallback) => {
    try {
      return JSON.parse(sessionStorage.getItem(key)) ?? fallback;
    } catch {
      return fallback;
    }
  };

  function authHeaders() {
    const headers = {};
    const credential = state.rejected ? null : readJSON(STORE.credential, null);
    if (credential && credential.secret) {
      if (credential.kind === "bearer") headers.Authorization = `Bearer ${credential.secret}`;
      else headers["X-API-Key"] = credential.secret;
    }
    const tenant = sessionStorage.getItem(STORE.tenant);
    if (tenant) headers["NGSILD-Tenant"] = tenant;
    return headers;
  }

  async function api(url, signal, extra = {}) {
    const headers = { Accept: "application/json", ...extra, ...authHeaders() };
    const response = await fetch(url, { headers, signal });
    if (!response.ok) {
      const error = new Error(`${url}: HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  // -- reading entities (NGSI-LD concise form, any @context) ------------------------------------
  function readAttribute(raw) {
    let value = raw;
    if (Array.isArray(value) && value.length && isObject(value[0]) && ("value" in value[0] || "object" in value[0])) {
      value = value.find((instance) => !instance.datasetId) ?? value[0];
    }
    if (!isObject(value)) return { value };
    const meta = { observedAt: value.observedAt, unitCode: value.unitCode, modifiedAt: value.modifiedAt };
    if ("value" in value) return { ...meta, value: value.value };
    if ("object" in value) return { ...meta, value: value.object, relationship: true };
    if ("languageMap" in value) return { ...meta, value: bilingual(value.languageMap) };
    if ("vocab" in value) return { ...meta, value: value.vocab };
    if ("json" in value) return { ...meta, value: value.json };
    if ("valueList" in value) return { ...meta, value: value.valueList };
    if ("objectList" in value) return { ...meta, value: value.objectList };
    return { value };
  }

  function parseEntity(raw) {
    const attributes = {};
    for (const [key, value] of Object.entries(raw)) {
      if (key === "id" || key === "type" || key === "scope" || key === "@context") continue;
      if (key === "createdAt" || key === "modifiedAt") continue;
      attributes[localName(key)] = readAttribute(value);
    }
    const types = [].concat(raw.type ?? []).map(localName);
    return { id: raw.id, types, attributes, modifiedAt: raw.modifiedAt };
  }

  const valueOf = (entity, name) => entity.attributes[name]?.value;
  function number(entity, ...names) {
    for (const name of names) {
      const value = valueOf(entity, name);
      if (typeof value === "number" && Number.isFinite(value)) return value;
      if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
    }
    return null;
  }
  const word = (entity, name) => {
    const value = valueOf(entity, name);
    return typeof value === "string" ? value : Array.isArray(value) && typeof value[0] === "string" ? value[0] : null;
  };

  function layerOf(entity) {
    for (const layer of state.layers) {
      for (const match of layer.matches) {
        if (!entity.types.includes(match.type)) continue;
        if (!match.measures) return layer;
        const measured = [].concat(valueOf(entity, "controlledProperty") ?? []);
        if (measured.includes(match.measures)) return layer;
      }
    }
    return null;
  }

  // -- states (the same ids and colours as the legend, from /map/layers) -----------------------
  function grade(value, limits) {
    if (value === null) return -1;
    const index = limits.findIndex((limit) => value <= limit);
    return index === -1 ? limits.length : index;
  }

  const STATUS = {
    traffic(entity) {
      const speed = number(entity, "averageVehicleSpeed", "speed");
      if (speed === null) return "unknown";
      return speed >= 30 ? "smooth" : speed >= 15 ? "slow" : "congested";
    },
    parking(entity) {
      const free = number(entity, "availableSpotNumber");
      const total = number(entity, "totalSpotNumber");
      if (free === null) return "unknown";
      if (free <= 0) return "full";
      return total && free / total < 0.3 ? "few" : "plenty";
    },
    "parking-spots"(entity) {
      const status = word(entity, "status");
      return ["free", "occupied", "closed"].includes(status) ? status : "unknown";
    },
    air(entity) {
      const worst = Math.max(grade(number(entity, "pm10"), [30, 80, 150]), grade(number(entity, "pm25"), [15, 35, 75]));
      return ["unknown", "good", "moderate", "bad", "very-bad"][worst + 1];
    },
    streetlights(entity) {
      const status = word(entity, "status");
      if (status && status !== "ok") return "fault";
      const power = word(entity, "powerState");
      const level = number(entity, "illuminanceLevel");
      if (power === "off") return "off";
      if (power === "low" || power === "dimmed" || (power === "on" && level !== null && level < 0.95)) return "dimmed";
      if (power === "on" || power === "bootingUp") return "on";
      return "unknown";
    },
    cctv(entity) {
      const condition = word(entity, "deviceState") ?? word(entity, "status");
      if (condition && !["ok", "working", "on"].includes(condition)) return "fault";
      return valueOf(entity, "on") === false ? "off" : "on";
    },
    waste(entity) {
      if (WASTE_FAULTS.has(word(entity, "status"))) return "fault";
      let level = number(entity, "fillingLevel");
      if (level === null) return "unknown";
      if (level > 1) level /= 100; // a percentage rather than a fraction
      return level < 0.5 ? "low" : level < 0.8 ? "filling" : "nearly-full";
    },
    beacons(entity) {
      const condition = word(entity, "deviceState");
      return condition && condition !== "ok" ? "fault" : "ok";
    },
    places(entity) {
      if (entity.types.includes("TransportStation")) return "station";
      const categories = [].concat(valueOf(entity, "category") ?? []);
      return categories.find((c) => ["food", "shopping", "culture"].includes(c)) ?? "other";
    },
  };

  // The city's clock: the newest observation the stream brought, moved on by the wall clock
  // since (a simulator may run ahead of or behind real time); the wall clock before any.
  function cityNow() {
    const clock = state.cityClock;
    return clock ? clock.observed + (Date.now() - clock.seen) : Date.now();
  }

  function observedTime(entity, names) {
    for (const name of names) {
      const attribute = entity.attributes[name];
      if (attribute === undefined) continue;
      const when = attribute.observedAt ?? attribute.modifiedAt ?? entity.modifiedAt;
      const time = Date.parse(when);
      return Number.isNaN(time) ? null : time;
    }
    return null;
  }

  function isStale(entity, layer) {
    const names = STALE_MEASURES[layer.id];
    if (!names) return false;
    const time = observedTime(entity, names);
    const minutes = state.config?.staleMinutes ?? 15;
    return time !== null && cityNow() - time > minutes * 60000;
  }

  // -- positions ---------------------------------------------------------------------------------
  function middle(coordinates) {
    return coordinates[Math.floor((coordinates.length - 1) / 2)];
  }

  function pointOf(geometry) {
    if (!isObject(geometry)) return null;
    const c = geometry.coordinates;
    switch (geometry.type) {
      case "Point": return c;
      case "MultiPoint": case "LineString": return middle(c);
      case "MultiLineString": return middle(c[0]);
      case "Polygon": {
        const ring = c[0].slice(0, -1);
        const sum = ring.reduce((acc, p) => [acc[0] + p[0], acc[1] + p[1]], [0, 0]);
        return [sum[0] / ring.length, sum[1] / ring.length];
      }
      case "MultiPolygon": return pointOf({ type: "Polygon", coordinates: c[0] });
      default: return null;
    }
  }

  function positionOf(entity) {
    const own = pointOf(valueOf(entity, "location"));
    if (own) return own;
    const segment = state.roads.get(valueOf(entity, "refRoadSegment"));
    if (segment) return middle(segment);
    for (const name of ["refDevice", "refParkingSite", "refPointOfInterest"]) {
      const other = state.entities.get(valueOf(entity, name));
      if (other && other.position) return other.position;
    }
    return null;
  }

  // -- applying changes, throttled -----------------------------------------------------------------
  function deliver(id, raw) {
    if (state.loading) state.buffer.push([id, raw]);
    else state.pending.set(id, raw);
    scheduleFlush();
  }

  function scheduleFlush() {
    if (state.flushTimer !== null || state.loading) return;
    const wait = Math.max(0, FLUSH_MS - (performance.now() - state.lastFlush));
    state.flushTimer = setTimeout(flush, wait);
  }

  function members(layerId) {
    if (!state.members.has(layerId)) state.members.set(layerId, new Map());
    return state.members.get(layerId);
  }

  function keyOf(id) {
    let key = state.keys.get(id);
    if (key === undefined) {
      key = state.keys.size + 1;
      state.keys.set(id, key);
    }
    return key;
  }

  function forget(old) {
    members(old.layer.id).delete(old.id);
    state.dirty.add(old.layer.id);
  }

  const samePlace = (a, b) => (a && b ? a[0] === b[0] && a[1] === b[1] : a === b);

  // An entity whose place and layer stay gets new colours through feature state (cheap for
  // the map); one that appears, goes or moves has its layer's data set again.
  function apply(id, raw) {
    const old = state.entities.get(id);
    const entity = raw === null ? null : parseEntity(raw);
    const layer = entity && layerOf(entity);
    if (!layer) {
      if (old) forget(old);
      state.entities.delete(id);
      return;
    }
    entity.layer = layer;
    entity.key = keyOf(id);
    entity.position = positionOf(entity);
    entity.status = STATUS[layer.id] ? STATUS[layer.id](entity) : layer.statuses[0]?.id;
    entity.stale = isStale(entity, layer);
    if (old && old.layer !== layer) forget(old);
    if (!old || old.layer !== layer || !samePlace(old.position, entity.position)) state.dirty.add(layer.id);
    if (layer.id === "traffic" && old?.status !== entity.status) state.trafficDirty = true;
    state.entities.set(id, entity);
    members(layer.id).set(id, entity);
    state.restyled.set(id, entity);
  }

  function noteObservations(raw) {
    if (!isObject(raw)) return;
    let newest = null;
    for (const value of Object.values(raw)) {
      const time = isObject(value) && value.observedAt ? Date.parse(value.observedAt) : NaN;
      if (!Number.isNaN(time) && (newest === null || time > newest)) newest = time;
    }
    if (newest !== null && (!state.cityClock || newest > cityNow())) {
      state.cityClock = { observed: newest, seen: Date.now() };
    }
  }

  function flush() {
    state.flushTimer = null;
    const began = performance.now();
    state.lastFlush = began;
    const changed = new Set(state.pending.keys());
    for (const [id, raw] of state.pending) apply(id, raw);
    state.pending.clear();
    redraw();
    if (state.popupId && changed.has(state.popupId)) showPopup(state.popupId);
    state.flushMs += performance.now() - began;
  }

  const drawnState = (entity) => `${entity.status}|${entity.stale}`;

  function feature(entity) {
    entity.drawn = drawnState(entity);
    return {
      type: "Feature",
      id: entity.key,
      geometry: { type: "Point", coordinates: entity.position },
      properties: { id: entity.id, status: entity.status, stale: entity.stale },
    };
  }

  function redraw() {
    const map = state.map;
    for (const entity of state.restyled.values()) {
      // A clustered source is drawn from its data: a new colour means setting it again.
      if (state.clustered.has(entity.layer.id)) {
        if (entity.drawn !== drawnState(entity)) state.dirty.add(entity.layer.id);
        continue;
      }
      const target = { source: `live-${entity.layer.id}`, id: entity.key };
      map.setFeatureState(target, { status: entity.status, stale: entity.stale });
    }
    state.restyled.clear();
    for (const layerId of state.dirty) {
      if (state.hidden.has(layerId)) continue; // drawn when shown
      const entities = [...members(layerId).values()].filter((e) => e.position);
      map.getSource(`live-${layerId}`)?.setData({ type: "FeatureCollection", features: entities.map(feature) });
      state.dirty.delete(layerId);
    }
    if (state.trafficDirty && !state.hidden.has("traffic")) {
      drawTrafficSegments([...members("traffic").values()]);
      state.trafficDirty = false;
    }
    updateCounts();
  }

  function drawTrafficSegments(detectors) {
    const features = [];
    for (const entity of detectors) {
      const segment = state.roads.get(valueOf(entity, "refRoadSegment"));
      if (!segment || entity.status === "unknown") continue;
      features.push({
        type: "Feature",
        geometry: { type: "LineString", coordinates: segment },
        properties: { id: entity.id, status: entity.status },
      });
    }
    state.map.getSource("live-traffic-segments")?.setData({ type: "FeatureCollection", features });
  }

  function recheckStaleness() {
    for (const entity of state.entities.values()) {
      const stale = isStale(entity, entity.layer);
      if (stale !== entity.stale) {
        entity.stale = stale;
        state.restyled.set(entity.id, entity);
      }
    }
    if (state.restyled.size) redraw();
  }

  // -- the panel: layers, legend, access -----------------------------------------------------------
  function renderLayerList() {
    const list = $("layer-list");
    list.replaceChildren();
    for (const layer of state.layers) {
      const count = members(layer.id).size;
      const item = element("li", count ? "" : "empty");
      const label = element("label");
      const box = element("input");
      box.type = "checkbox";
      box.checked = !state.hidden.has(layer.id);
      box.dataset.layer = layer.id;
      box.addEventListener("change", () => toggleLayer(layer.id, box.checked));
      const swatch = element("span", "swatch");
      swatch.style.background = layer.statuses[0]?.colour ?? "#999";
      label.append(box, swatch, element("span", "name", bilingual(layer.name)));
      label.append(element("span", "count", count.toLocaleString()));
      item.append(label);
      item.dataset.layer = layer.id;
      item.dataset.count = String(count);
      list.append(item);
    }
  }

  // Only the numbers change as entities come and go: the list is not built again, so a tap
  // on a checkbox is never lost to a redraw.
  function updateCounts() {
    for (const item of $("layer-list").children) {
      const count = members(item.dataset.layer).size;
      if (item.dataset.count === String(count)) continue;
      item.dataset.count = String(count);
      item.classList.toggle("empty", count === 0);
      item.querySelector(".count").textContent = count.toLocaleString();
    }
  }

  function renderLegend() {
    const legend = $("legend");
    legend.replaceChildren();
    for (const layer of state.layers) {
      if (state.hidden.has(layer.id)) continue;
      const group = element("div", "group");
      group.append(element("div", "", bilingual(layer.name)));
      for (const status of layer.statuses) {
        const item = element("div", "item");
        const swatch = element("span", "swatch");
        swatch.style.background = status.colour;
        item.append(swatch, element("span", "", bilingual(status.name)));
        group.append(item);
      }
      if (STALE_MEASURES[layer.id]) {
        const item = element("div", "item");
        const minutes = state.config?.staleMinutes ?? 15;
        item.append(element("span", "swatch stale"), element("span", "", `${t("stale")} (${minutes}${t("staleAfter")})`));
        group.append(item);
      }
      legend.append(group);
    }
  }

  function toggleLayer(layerId, shown) {
    if (shown) state.hidden.delete(layerId);
    else state.hidden.add(layerId);
    localStorage.setItem(LOCAL.hidden, JSON.stringify([...state.hidden]));
    const visibility = shown ? "visible" : "none";
    state.map.setLayoutProperty(`live-${layerId}`, "visibility", visibility);
    if (state.clustered.has(layerId)) state.map.setLayoutProperty(`live-${layerId}-clusters`, "visibility", visibility);
    if (layerId === "traffic") state.map.setLayoutProperty("live-traffic-segments", "visibility", visibility);
    if (shown) {
      state.dirty.add(layerId);
      if (layerId === "traffic") state.trafficDirty = true;
      redraw();
    }
    renderLegend();
  }

  function renderConnection() {
    const node = $("connection");
    node.className = state.connection;
    let text = t(state.connection);
    if (state.connection === "loading" && state.total) text += ` ${state.loaded.toLocaleString()} / ${state.total.toLocaleString()}`;
    if (state.connection === "live") text += ` · ${state.rate.toLocaleString()} ${t("updatesPerSecond")}`;
    node.textContent = text;
  }

  function setConnection(connection) {
    state.connection = connection;
    renderConnection();
  }

  function renderWho() {
    const who = $("who");
    if (!who) return;
    const credential = readJSON(STORE.credential, null);
    const tenant = sessionStorage.getItem(STORE.tenant) || t("defaultTenant");
    who.classList.toggle("error", state.rejected);
    if (state.rejected) who.textContent = t("rejected");
    else if (credential && credential.secret) who.textContent = `${t("signedIn")} · ${t("tenantName")}: ${tenant}`;
    else who.textContent = `${t("anonymous")} (${t("tenantName")}: ${tenant})`;
  }

  function applyLanguage() {
    document.documentElement.lang = state.language;
    if (!OPTIONS.style) {
      document.title = `${t("title")} · ${state.language === "ko" ? TEXT.en.title : TEXT.ko.title}`;
      for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
      $("language").textContent = t("language");
    }
    for (const label of state.labels) label.node.textContent = bilingual(label.name);
    renderLayerList();
    renderLegend();
    renderConnection();
    renderWho();
    if (state.popupId) showPopup(state.popupId);
    document.dispatchEvent(new CustomEvent("livemap:language", { detail: state.language }));
  }

  // -- popups ---------------------------------------------------------------------------------------
  function formatValue(value, unitCode) {
    let text;
    if (typeof value === "number") text = value.toLocaleString(state.language, { maximumFractionDigits: 2 });
    else if (typeof value === "boolean") text = value ? "✓" : "✗";
    else if (Array.isArray(value)) text = value.map((v) => (isObject(v) ? JSON.stringify(v) : String(v))).join(", ");
    else if (isObject(value)) text = JSON.stringify(value);
    else text = String(value);
    if (typeof value === "string" && value.startsWith("urn:ngsi-ld:")) text = value.split(":").slice(3).join(":");
    if (text.length > 140) text = `${text.slice(0, 139)}…`;
    const unit = unitCode !== undefined ? UNITS[unitCode] ?? unitCode : "";
    return unit ? `${text} ${unit}` : text;
  }

  function age(time) {
    const seconds = Math.round((cityNow() - time) / 1000);
    if (seconds < 10) return t("justNow");
    const [amount, unit] = seconds < 60 ? [seconds, "seconds"] : seconds < 3600 ? [Math.round(seconds / 60), "minutes"]
      : seconds < 86400 ? [Math.round(seconds / 3600), "hours"] : [Math.round(seconds / 86400), "days"];
    return state.language === "ko" ? `${amount}${t(unit)} ${t("ago")}` : `${amount} ${t(unit)} ${t("ago")}`;
  }

  function when(iso) {
    const time = Date.parse(iso);
    if (Number.isNaN(time)) return String(iso);
    const local = new Date(time).toLocaleString(state.language === "ko" ? "ko-KR" : "en-GB", { timeZone: "Asia/Seoul" });
    return `${local} (${age(time)})`;
  }

  function attributeLabel(name) {
    const labels = ATTRIBUTE_NAMES[name];
    if (labels) return labels[state.language === "ko" ? 0 : 1];
    return state.language === "ko" ? name : name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  }

  function popupContent(entity) {
    const box = element("div", "entity-popup");
    const name = state.language === "ko"
      ? valueOf(entity, "name") ?? valueOf(entity, "alternateName")
      : valueOf(entity, "alternateName") ?? valueOf(entity, "name");
    box.append(element("h3", "", name ? String(name) : entity.id));
    box.append(element("div", "subtitle", `${entity.types.join(", ")} · ${entity.id}`));
    const status = entity.layer.statuses.find((s) => s.id === entity.status);
    if (status) {
      const line = element("div", "state");
      const swatch = element("span", "swatch");
      swatch.style.background = status.colour;
      line.append(swatch, element("span", "", bilingual(status.name)));
      if (entity.stale) line.append(element("span", "observed stale", `· ${t("stale")}`));
      box.append(line);
    }
    const table = element("table");
    const names = Object.keys(entity.attributes).filter((n) => !HIDDEN_ATTRIBUTES.has(n)).sort();
    for (const attributeName of names) {
      const attribute = entity.attributes[attributeName];
      if (isObject(attribute.value) && "coordinates" in attribute.value) continue;
      const row = element("tr");
      row.append(element("td", "", attributeLabel(attributeName)));
      const shown = attributeName === "areaServed" && state.zones.has(attribute.value)
        ? bilingual(state.zones.get(attribute.value))
        : formatValue(attribute.value, attribute.unitCode);
      const cell = element("td", "value", shown);
      if (attribute.observedAt) {
        const observed = element("div", "observed", `${t("observed")} ${when(attribute.observedAt)}`);
        const time = Date.parse(attribute.observedAt);
        if (STALE_MEASURES[entity.layer.id]?.includes(attributeName) && entity.stale) observed.classList.add("stale");
        if (Number.isNaN(time)) observed.textContent = `${t("observed")} ${attribute.observedAt}`;
        cell.append(observed);
      }
      row.append(cell);
      table.append(row);
    }
    box.append(table);
    if (entity.modifiedAt) box.append(element("div", "footer", `${t("modified")} ${when(entity.modifiedAt)}`));
    return box;
  }

  function showPopup(id, lngLat) {
    const entity = state.entities.get(id);
    if (!entity) {
      state.popup?.remove();
      return;
    }
    if (!state.popup) {
      state.popup = new maplibregl.Popup({ maxWidth: "300px", focusAfterOpen: false });
      state.popup.on("close", () => {
        state.popupId = null;
      });
    }
    if (state.popupId !== id) document.dispatchEvent(new CustomEvent("livemap:select", { detail: id }));
    state.popupId = id;
    state.popup.setDOMContent(popupContent(entity));
    state.popup.setLngLat(lngLat ?? entity.position);
    if (!state.popup.isOpen()) state.popup.addTo(state.map);
  }

  function showInfo(lngLat, lines) {
    state.popup?.remove();
    const box = element("div", "entity-popup");
    box.append(element("h3", "", lines[0]));
    for (const line of lines.slice(1)) box.append(element("div", "subtitle", line));
    new maplibregl.Popup({ maxWidth: "300px", focusAfterOpen: false }).setLngLat(lngLat).setDOMContent(box).addTo(state.map);
  }

  function bindClicks() {
    const map = state.map;
    const live = state.layers.map((layer) => `live-${layer.id}`);
    const clusters = [...state.clustered].map((id) => `live-${id}-clusters`);
    map.on("click", (event) => {
      const gathered = clusters.length ? map.queryRenderedFeatures(event.point, { layers: clusters }) : [];
      if (gathered.length) {
        const hit = gathered[0];
        map.getSource(hit.source).getClusterExpansionZoom(hit.properties.cluster_id)
          .then((zoom) => map.easeTo({ center: hit.geometry.coordinates, zoom }));
        return;
      }
      const hits = map.queryRenderedFeatures(event.point, { layers: [...live, "live-traffic-segments"] });
      if (hits.length) {
        showPopup(hits[0].properties.id, hits[0].geometry.type === "Point" ? hits[0].geometry.coordinates : event.lngLat);
        return;
      }
      const roads = map.queryRenderedFeatures(event.point, { layers: ["roads"] });
      if (roads.length) {
        const p = roads[0].properties;
        const name = state.language === "ko" ? p.name_ko || p.name_en : p.name_en || p.name_ko;
        const details = `${p.road_class} · ${p.total_lanes} ${t("roadLanes")} · ${t("speedLimit")} ${p.speed_limit} km/h`;
        showInfo(event.lngLat, [name, details + (p.oneway ? ` · ${t("oneway")}` : "")]);
        return;
      }
      const zones = map.queryRenderedFeatures(event.point, { layers: ["zones-fill"] });
      if (zones.length) {
        const p = zones[0].properties;
        showInfo(event.lngLat, [state.language === "ko" ? p.name_ko : p.name_en, `${t("zone")} · ${p.parent}`]);
      }
    });
    for (const layerId of [...live, ...clusters, "live-traffic-segments"]) {
      map.on("mouseenter", layerId, () => { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", layerId, () => { map.getCanvas().style.cursor = ""; });
    }
  }

  // -- labels: HTML markers, in the page's fonts --------------------------------------------------
  function addLabel(position, name, className) {
    const node = element("div", `map-label ${className}`, bilingual(name));
    new maplibregl.Marker({ element: node, anchor: "center" }).setLngLat(position).addTo(state.map);
    state.labels.push({ node, name });
  }

  async function addLabels(zones, places, roads) {
    for (const zone of zones.features) {
      addLabel(zone.properties.label, { ko: zone.properties.name_ko, en: zone.properties.name_en }, "zone");
    }
    for (const place of places.features) {
      if (!place.properties.labelled) continue;
      addLabel(place.properties.label, { ko: place.properties.name_ko, en: place.properties.name_en }, "place");
    }
    // One label per road name, on the middle link of the longest run of it.
    const byName = new Map();
    for (const road of roads.features) {
      const key = road.properties.name_ko || road.properties.name_en;
      if (!key || road.properties.class === "service") continue;
      if (!byName.has(key)) byName.set(key, []);
      byName.get(key).push(road);
    }
    for (const links of byName.values()) {
      if (links.length < 2) continue;
      const link = links[Math.floor(links.length / 2)];
      addLabel(middle(link.geometry.coordinates), { ko: link.properties.name_ko, en: link.properties.name_en }, "road");
    }
    const classify = () => {
      const zoom = state.map.getZoom();
      const container = $("map");
      container.classList.toggle("far", zoom < 13.5);
      container.classList.toggle("near", zoom >= 15);
      container.classList.toggle("very-far", zoom < 12);
    };
    state.map.on("zoom", classify);
    classify();
  }

  // -- loading and streaming -------------------------------------------------------------------
  function readsOut() {
    state.readsOut = true;
    state.readsSent?.();
  }

  async function loadEntities(generation, signal) {
    const types = [...new Set(state.config.layers.flatMap((layer) => layer.types))];
    if (!types.length) return;
    const limit = state.config.pageSize;
    const link = `<${state.style.metadata["smartcity:context"]}>; rel="http://www.w3.org/ns/json-ld#context"`;
    const read = async (offset) => {
      const query = new URLSearchParams({
        type: types.join(","), format: "concise", limit: String(limit), offset: String(offset),
      });
      const response = await api(`/ngsi-ld/v1/entities?${query}`, signal, { Link: link });
      const page = await response.json();
      if (generation !== state.generation) return page;
      for (const raw of page) state.pending.set(raw.id, raw);
      state.loaded += page.length;
      renderConnection();
      return page;
    };
    // /map/layers counted them: every page is planned at once and read a few at a time; a
    // last page that comes back full (more were added meanwhile) is followed by the next.
    const counted = Object.values(state.config.counts ?? {}).reduce((sum, n) => sum + n, 0);
    state.total = counted || null;
    const offsets = [];
    for (let offset = 0; offset < Math.max(counted, 1); offset += limit) offsets.push(offset);
    let last = offsets.at(-1);
    const readers = Array.from({ length: Math.min(PARALLEL_PAGES, offsets.length) }, async (_, index) => {
      if (index === 0) queueMicrotask(readsOut);
      while (offsets.length && generation === state.generation) {
        const offset = offsets.shift();
        const page = await read(offset);
        if (offset === last && page.length === limit) {
          last += limit;
          offsets.push(last);
        }
      }
    });
    await Promise.all(readers);
  }

  function handleEvent(name, data, id, cursor) {
    if (id !== null) cursor.lastId = id;
    if (name === "changes") {
      const payload = JSON.parse(data);
      for (const change of payload.changes) {
        if (change.kind === "delete") deliver(change.id, null);
        else {
          noteObservations(change.entity);
          deliver(change.entity.id, change.entity);
        }
        state.updates += 1;
        state.received += 1;
      }
    } else if (name === "reset" || name === "denied") {
      cursor.restart = true;
    }
  }

  async function readStream(response, cursor) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const { name, id, data, empty } = parseEventBlock(block);
        if (!empty) handleEvent(name, data, id, cursor);
        if (cursor.restart) return;
      }
    }
  }

  async function stream(generation, position, signal) {
    const cursor = { lastId: String(position), restart: false };
    let backoff = 1000;
    let first = true;
    while (generation === state.generation) {
      try {
        const headers = { Accept: "text/event-stream", ...authHeaders() };
        if (!first) headers["Last-Event-ID"] = cursor.lastId;
        const response = await fetch(`/map/stream?after=${encodeURIComponent(cursor.lastId)}`, { headers, signal, cache: "no-store" });
        if (response.status === 401 || response.status === 403) {
          if (state.rejected) setConnection("failed");
          else start(true);
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        first = false;
        backoff = 1000;
        if (!state.loading) setConnection("live");
        await readStream(response, cursor);
        if (cursor.restart) {
          start(false);
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
      }
      if (generation !== state.generation) return;
      setConnection("reconnecting");
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 30000);
    }
  }

  function clearEntities() {
    state.entities.clear();
    state.pending.clear();
    state.buffer = [];
    state.restyled.clear();
    state.trafficDirty = true;
    for (const layer of state.layers) {
      members(layer.id).clear();
      state.dirty.add(layer.id);
    }
  }

  // (Re)start: read the layers and where to stream from, stream, and load the entities meanwhile.
  async function start(credentialRefused) {
    state.generation += 1;
    const generation = state.generation;
    state.controller?.abort();
    const controller = new AbortController();
    state.controller = controller;
    if (credentialRefused) state.rejected = true;
    state.loading = true;
    state.loaded = 0;
    state.total = null;
    setConnection("loading");
    renderWho();
    let config;
    try {
      config = await (await api("/map/layers", controller.signal)).json();
    } catch (error) {
      readsOut();
      if (generation !== state.generation) return;
      if ((error.status === 401 || error.status === 403) && !state.rejected) {
        start(true);
        return;
      }
      setConnection("failed");
      setTimeout(() => generation === state.generation && start(false), 5000);
      return;
    }
    if (generation !== state.generation) return;
    state.config = config;
    clearEntities();
    renderLegend();
    stream(generation, config.position, controller.signal);
    try {
      await loadEntities(generation, controller.signal);
    } catch (error) {
      readsOut();
      if (generation !== state.generation) return;
      setConnection("failed");
      setTimeout(() => generation === state.generation && start(false), 5000);
      return;
    }
    readsOut();
    performance.mark("livemap:entities-read");
    await state.mapLoaded;
    if (generation !== state.generation) return;
    for (const [id, raw] of state.buffer) state.pending.set(id, raw);
    state.buffer = [];
    state.loading = false;
    flush();
    setConnection("live");
    window.livemap.loadedAt = Date.now();
    performance.mark("livemap:loaded");
  }

  // -- the page ----------------------------------------------------------------------------------
  function chooseLanguage() {
    const asked = new URLSearchParams(location.search).get("lang");
    const kept = localStorage.getItem(LOCAL.language);
    const choice = asked || kept || OPTIONS.language || (navigator.language || "ko").slice(0, 2);
    return choice === "en" ? "en" : "ko";
  }

  function setLanguage(language) {
    state.language = language === "en" ? "en" : "ko";
    localStorage.setItem(LOCAL.language, state.language);
    applyLanguage();
  }

  function bindPanel() {
    $("language")?.addEventListener("click", () => setLanguage(state.language === "ko" ? "en" : "ko"));
    if (!$("credential-form")) return; // embedded: the page signs in itself
    $("collapse").addEventListener("click", () => {
      const panel = $("panel");
      const collapsed = panel.classList.toggle("collapsed");
      $("collapse").setAttribute("aria-expanded", String(!collapsed));
      $("collapse").textContent = collapsed ? "▴" : "▾";
    });
    const form = $("credential-form");
    const kept = readJSON(STORE.credential, null);
    if (kept) $("credential-kind").value = kept.kind;
    $("tenant").value = sessionStorage.getItem(STORE.tenant) ?? "";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const secret = $("credential").value.trim();
      if (secret) sessionStorage.setItem(STORE.credential, JSON.stringify({ kind: $("credential-kind").value, secret }));
      const tenant = $("tenant").value.trim();
      if (tenant) sessionStorage.setItem(STORE.tenant, tenant);
      else sessionStorage.removeItem(STORE.tenant);
      $("credential").value = "";
      state.rejected = false;
      $("panel-body").scrollTop = 0;
      start(false);
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(STORE.credential);
      sessionStorage.removeItem(STORE.tenant);
      $("credential").value = "";
      $("tenant").value = "";
      state.rejected = false;
      start(false);
    });
  }

  function fitPadding() {
    if (OPTIONS.padding) return OPTIONS.padding();
    const phone = window.innerWidth <= 640;
    return phone ? { top: 20, bottom: window.innerHeight * 0.3, left: 10, right: 10 } : { top: 20, bottom: 20, left: 330, right: 50 };
  }

  // A link may carry a credential in its fragment (never sent to the server, so never in a
  // log): `smartcity demo` prints one. It is kept for the tab and taken out of the address.
  function takeCredentialFromLink() {
    const given = new URLSearchParams(location.hash.slice(1));
    const kind = given.has("token") ? "bearer" : given.has("key") ? "key" : null;
    if (!kind) return;
    sessionStorage.setItem(STORE.credential, JSON.stringify({ kind, secret: given.get(kind === "bearer" ? "token" : "key") }));
    history.replaceState(null, "", location.pathname + location.search);
  }

  async function main() {
    takeCredentialFromLink();
    state.language = chooseLanguage();
    state.hidden = new Set(JSON.parse(localStorage.getItem(LOCAL.hidden) ?? "null") ?? []);
    bindPanel();
    applyLanguage();
    const style = await (await fetch(OPTIONS.style ?? "/map/style.json")).json();
    state.style = style;
    state.clustered = new Set(style.metadata["smartcity:clustered"] ?? []);
    state.layers = style.metadata["smartcity:layers"];
    state.layerById = new Map(state.layers.map((layer) => [layer.id, layer]));
    if (localStorage.getItem(LOCAL.hidden) === null) {
      for (const layer of state.layers) if (!layer.shown) state.hidden.add(layer.id);
    }
    let mapLoaded;
    state.mapLoaded = new Promise((resolve) => { mapLoaded = resolve; });
    state.mapLoaded.then(() => resolveMapReady());
    // The entities are read while the map gets ready (an embedding page signs in first).
    const started = (async () => {
      if (OPTIONS.signedIn) await OPTIONS.signedIn;
      await start(false);
    })();
    const [zones, places, roads] = await Promise.all(
      ["zones", "places", "roads"].map(async (name) => (await fetch(style.sources[name].data)).json()),
    );
    // Creating the map keeps the page busy for a while: the entities' reads go out first.
    if (!state.readsOut) await Promise.race([new Promise((resolve) => { state.readsSent = resolve; }), sleep(READS_WAIT_MS)]);
    // The map gets the district's files as read here, rather than fetching them again.
    style.sources.zones.data = zones;
    style.sources.places.data = places;
    style.sources.roads.data = roads;
    for (const road of roads.features) state.roads.set(road.properties.id, road.geometry.coordinates);
    for (const zone of zones.features) state.zones.set(zone.properties.id, { ko: zone.properties.name_ko, en: zone.properties.name_en });
    for (const layer of state.layers) {
      const visibility = state.hidden.has(layer.id) ? "none" : "visible";
      const drawn = style.layers.filter((l) => l.id === `live-${layer.id}` || l.id === `live-${layer.id}-clusters`
        || (layer.id === "traffic" && l.id === "live-traffic-segments"));
      for (const l of drawn) l.layout = { ...(l.layout ?? {}), visibility };
    }
    state.map = new maplibregl.Map({
      container: "map",
      style,
      bounds: style.metadata["smartcity:bounds"],
      fitBoundsOptions: { padding: fitPadding() },
      attributionControl: false,
    });
    performance.mark("livemap:map-created");
    state.map.once("load", () => {
      performance.mark("livemap:map-loaded");
      mapLoaded();
    });
    state.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    state.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
    state.map.addControl(new maplibregl.AttributionControl({
      compact: true, customAttribution: "MapLibre · district model (coordinates approximate)",
    }));
    await state.mapLoaded;
    addLabels(zones, places, roads);
    bindClicks();
    applyLanguage();
    setInterval(recheckStaleness, STALE_CHECK_MS);
    setInterval(() => {
      state.rate = Math.round(state.updates / 5);
      state.updates = 0;
      if (state.connection === "live") renderConnection();
    }, 5000);
    await started;
  }

  let resolveMapReady;
  // One server-sent event block: its name, id and data lines (the dashboard reads its own
  // stream with this too).
  function parseEventBlock(block) {
    let name = "message", id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const content = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = content;
      else if (field === "data") data.push(content);
      else if (field === "id") id = content;
    }
    return { name, id, data: data.join("\n"), empty: !data.length && id === null };
  }

  window.livemap = {
    parseEventBlock,
    state,
    mapReady: new Promise((resolve) => { resolveMapReady = resolve; }),
    entity: (id) => state.entities.get(id),
    counts: () => Object.fromEntries(state.layers.map((layer) => [layer.id, members(layer.id).size])),
    ready: null,
    loadedAt: null,
    restart: () => window.livemap.ready.then(() => start(false)),
    setLanguage,
  };
  window.livemap.ready = main();
})();
