// Parking guidance page: pick a destination on the district map, see where to park.
// The map is the district's own GeoJSON (/map/style.json): no tiles are downloaded.
"use strict";

(() => {
  const API = "/mobility/v1/parking";
  const ARENA = [127.0515, 37.6512];
  const TEXT = {
    ko: {
      title: "주차 안내", hint: "지도를 눌러 목적지를 고르세요", arrival: "도착", stay: "주차 시간",
      search: "찾기", account: "예약하려면 로그인", key: "API 키", free: "빈자리", walk: "도보",
      min: "분", fee: "요금 (예상)", won: "원", forecast: "도착 시 예상", stale: "갱신 중단",
      live: "실시간", unknown: "정보 없음", last: "마지막 값", hours: "운영", shared: "공유주차",
      reservable: "예약 가능", reserve: "예약", reserved: "예약했습니다", none: "조건에 맞는 주차장이 없습니다",
      loading: "찾는 중…", found: (n) => `주차장 ${n}곳`, failed: "불러오지 못했습니다",
      transit: "환승", method: { network: "도로망 기준", detour: "직선거리 보정" },
      hosts: { church: "교회", school: "학교", apartment: "아파트", office: "업무시설", other: "기타" },
      public: "공영", private: "민영",
      models: { "gradient-boosting": "학습 모델", persistence: "현재값 유지", "historical-average": "평균 패턴" },
    },
    en: {
      title: "Parking guidance", hint: "Tap the map to choose your destination", arrival: "Arrive",
      stay: "Stay", search: "Search", account: "Sign in to reserve", key: "API key",
      free: "free", walk: "walk", min: "min", fee: "Fee (est.)", won: "KRW",
      forecast: "expected on arrival", stale: "stale", live: "live", unknown: "no data",
      last: "last known", hours: "Open", shared: "Shared parking", reservable: "reservable",
      reserve: "Reserve", reserved: "Reserved", none: "No parking fits your search",
      loading: "Searching…", found: (n) => `${n} places to park`, failed: "Could not load",
      transit: "Transfer", method: { network: "along the roads", detour: "straight line × 1.3" },
      hosts: { church: "church", school: "school", apartment: "apartment", office: "office", other: "other" },
      public: "public", private: "private",
      models: { "gradient-boosting": "trained model", persistence: "as now", "historical-average": "usual pattern" },
    },
  };
  const params = new URLSearchParams(location.search);
  const state = {
    lang: params.get("lang") === "en" ? "en" : "ko",
    near: params.get("near") ? params.get("near").split(",").map(Number) : ARENA,
    map: null, answer: null, ready: false,
  };
  window.parkingGuidance = { state };  // for tests and the curious
  const $ = (id) => document.getElementById(id);
  const t = (key) => TEXT[state.lang][key];

  function localInput(date) {
    const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
    return shifted.toISOString().slice(0, 16);
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-text]")) {
      node.textContent = t(node.dataset.text);
    }
    $("language").textContent = state.lang === "ko" ? "EN" : "한국어";
  }

  function headers() {
    const key = $("key").value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  async function search() {
    const query = new URLSearchParams({
      near: state.near.map((x) => x.toFixed(6)).join(","),
      duration: $("duration").value, lang: state.lang, limit: "8",
    });
    if ($("at").value) {
      query.set("at", new Date($("at").value).toISOString());
    }
    $("status").textContent = t("loading");
    try {
      const response = await fetch(`${API}/guidance?${query}`, { headers: headers() });
      const body = await response.json();
      if (!response.ok) {
        throw new Error(body.detail || response.statusText);
      }
      state.answer = body;
      render(body);
    } catch (error) {
      $("status").textContent = `${t("failed")}: ${error.message}`;
    }
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function availabilityText(site) {
    const a = site.availability;
    if (a.state === "live") return [`${a.free} / ${a.total ?? "?"} ${t("free")}`, "live", t("live")];
    if (a.state === "stale") {
      return [`${t("last")} ${a.lastFree ?? "?"}`, "stale", t("stale")];
    }
    return ["", "unknown", t("unknown")];
  }

  function card(site, index) {
    const item = element("li", site.group);
    item.dataset.site = site.id;
    item.append(element("h2", "", `${index + 1}. ${site.name}`));
    const facts = element("div", "facts");
    const [count, badgeClass, badgeText] = availabilityText(site);
    const badge = element("span", `badge ${badgeClass}`, badgeText);
    facts.append(badge, element("span", "", count));
    facts.append(element("span", "", `${t("walk")} ${Math.round(site.walk.minutes)}${t("min")} (${Math.round(site.walk.metres)} m)`));
    if (site.forecast) {
      const model = t("models")[site.forecast.model] || site.forecast.model;
      const forecast = element("span", "", `${t("forecast")} ${Math.round(site.forecast.free)} (${Math.round(site.forecast.low)}–${Math.round(site.forecast.high)}) · ${model}`);
      forecast.className = "forecast";
      forecast.dataset.model = site.forecast.model;
      facts.append(forecast);
    }
    if (site.fee) {
      facts.append(element("span", "", `${t("fee")} ${site.fee.amount.toLocaleString()}${t("won")}`));
    }
    if (site.operator) facts.append(element("span", "", t(site.operator)));
    if (site.openingHours) facts.append(element("span", "", `${t("hours")} ${site.openingHours}`));
    if (site.transit.length) facts.append(element("span", "", `${t("transit")} ${site.transit.join(", ")}`));
    item.append(facts);
    if (site.shared) {
      const shared = element("div", "facts",
        `${t("shared")} (${TEXT[state.lang].hosts[site.shared.host]}) ${site.shared.windows} · ${t("reservable")} ${site.shared.reservable}`);
      item.append(shared);
      if (site.shared.reservable > 0 && $("key").value.trim()) {
        const button = element("button", "", t("reserve"));
        button.type = "button";
        button.addEventListener("click", () => reserve(site, button));
        item.append(button);
      }
    }
    if (site.notes.length) {
      const notes = element("ul", "notes");
      for (const note of site.notes) notes.append(element("li", "", note.text));
      item.append(notes);
    }
    item.addEventListener("click", () => state.map && state.map.easeTo({ center: site.location.coordinates }));
    return item;
  }

  async function reserve(site, button) {
    const start = $("at").value ? new Date($("at").value) : new Date();
    const hours = parseInt($("duration").value, 10);
    const end = new Date(start.getTime() + hours * 3600000);
    const response = await fetch(`${API}/reservations`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers() },
      body: JSON.stringify({ site: site.id, start: start.toISOString(), end: end.toISOString() }),
    });
    const body = await response.json();
    button.textContent = response.ok ? t("reserved") : body.detail;
    button.disabled = true;
  }

  function render(answer) {
    const list = $("results");
    list.replaceChildren(...answer.sites.map(card));
    $("status").textContent = answer.sites.length
      ? `${t("found")(answer.sites.length)} · ${t("method")[answer.walking]}`
      : t("none");
    const banner = $("event");
    banner.hidden = !answer.eventMode;
    banner.textContent = answer.eventMode ? `${answer.eventMode.name}: ${answer.eventMode.message}` : "";
    drawSites(answer);
  }

  const COLOURS = { space: "#16a34a", "park-and-ride": "#2563eb", unknown: "#d97706", full: "#dc2626", avoid: "#dc2626" };

  function drawSites(answer) {
    const map = state.map;
    if (!map || !state.ready) return;
    const features = answer.sites.map((site, index) => ({
      type: "Feature", geometry: site.location,
      properties: { label: String(index + 1), colour: COLOURS[site.group] },
    }));
    map.getSource("sites").setData({ type: "FeatureCollection", features });
    map.getSource("destination").setData({ type: "Feature", geometry: { type: "Point", coordinates: state.near }, properties: {} });
  }

  async function start() {
    applyLanguage();
    $("at").value = localInput(new Date());
    const style = await (await fetch("/map/style.json")).json();
    state.map = new maplibregl.Map({
      container: "map", style, bounds: style.metadata["smartcity:bounds"], attributionControl: false,
    });
    state.map.on("load", () => {
      const empty = { type: "FeatureCollection", features: [] };
      state.map.addSource("sites", { type: "geojson", data: empty });
      state.map.addSource("destination", { type: "geojson", data: empty });
      state.map.addLayer({ id: "sites", type: "circle", source: "sites",
        paint: { "circle-radius": 9, "circle-color": ["get", "colour"], "circle-stroke-width": 2, "circle-stroke-color": "#fff" } });
      state.map.addLayer({ id: "destination", type: "circle", source: "destination",
        paint: { "circle-radius": 7, "circle-color": "#111827", "circle-stroke-width": 3, "circle-stroke-color": "#fbbf24" } });
      state.ready = true;
      if (state.answer) drawSites(state.answer);
      document.body.dataset.map = "ready";
    });
    state.map.on("click", (event) => {
      state.near = [event.lngLat.lng, event.lngLat.lat];
      search();
    });
    $("language").addEventListener("click", () => {
      state.lang = state.lang === "ko" ? "en" : "ko";
      applyLanguage();
      search();
    });
    $("query").addEventListener("submit", (event) => { event.preventDefault(); search(); });
    await search();
  }

  start();
})();
