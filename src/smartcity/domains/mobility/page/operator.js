// Parking operations page: a lot operator signs in and sees occupancy (24 h and the forecast
// ahead), revenue per day, daily settlements and incomplete sessions of its own lots. What each
// operator may see is decided by the server (the service layer); this page only draws it.
"use strict";

(() => {
  const API = "/mobility/v1/parking/operator/overview";
  const STORE = { token: "parking-operator-token", tenant: "parking-operator-tenant" };
  const ZONE = "Asia/Seoul";
  const TEXT = {
    ko: {
      title: "주차 운영", signIn: "운영사 로그인", name: "아이디", password: "비밀번호",
      tenant: "테넌트 (선택)", enter: "로그인", logout: "로그아웃",
      occupancy: "주차장별 점유 추이 (24시간, 예측 포함)", revenue: "일별 매출",
      settlement: "운영사별 일일 정산", incomplete: "대사할 미완료 세션",
      loading: "불러오는 중…", failed: "불러오지 못했습니다", wrong: "아이디 또는 비밀번호가 틀렸습니다",
      noRole: "주차 운영 권한(parking-operator)이 없습니다", forbidden: "이 정보를 볼 권한이 없습니다",
      updated: (at) => `${at} 기준`, scope: (ops) => `운영사: ${ops}`, allOps: "운영사: 전체",
      lotsNone: "볼 수 있는 주차장이 없습니다", none: "없음", spaces: "면", occupied: "점유",
      capacity: "주차면", now: "지금", past: "지난 24시간", ahead: "예측", band: "예측 범위",
      model: { "gradient-boosting": "학습 모델", persistence: "현재값 유지", "historical-average": "평균 패턴", observed: "관측값" },
      modelLine: (m, why) => `예측: ${m}${why ? ` (${why})` : ""}`,
      reasons: { training: "모델 학습 전", "too-little-history": "이력 부족", "model-stale": "모델이 오래됨" },
      day: "영업일", operator: "운영사", gross: "총매출", discounts: "감면", refunds: "환불",
      net: "순매출", charges: "건수", revisions: "정산 차수", session: "세션", lot: "주차장",
      status: "상태", entry: "입차", payer: "카드·차량", total: "합계",
      statuses: { open: "출차 없음", flagged: "대사 대상" }, won: (n) => `${n.toLocaleString("ko-KR")}원`,
      incompleteNote: (h) => `${h}시간 넘게 출차가 없는 세션과 대사 대상으로 표시된 세션`,
      businessDay: "영업일", settleRun: "정산 실행", reconcileRun: "24시간 넘은 세션 대사 표시",
      settled: (n) => `정산 ${n}건`, flagged: (n) => `새로 대사 대상 ${n}건`,
    },
    en: {
      title: "Parking operations", signIn: "Operator sign-in", name: "User name",
      password: "Password", tenant: "Tenant (optional)", enter: "Sign in", logout: "Sign out",
      occupancy: "Occupancy per lot (24 h and forecast)", revenue: "Revenue per day",
      settlement: "Daily settlement per operator", incomplete: "Incomplete sessions to reconcile",
      loading: "Loading…", failed: "Could not load", wrong: "Wrong user name or password",
      noRole: "This account has no parking-operator role", forbidden: "You may not see this",
      updated: (at) => `as of ${at}`, scope: (ops) => `Operators: ${ops}`, allOps: "Operators: all",
      lotsNone: "No lots to show", none: "none", spaces: "spaces", occupied: "occupied",
      capacity: "capacity", now: "now", past: "last 24 h", ahead: "forecast", band: "likely range",
      model: { "gradient-boosting": "trained model", persistence: "persistence", "historical-average": "usual pattern", observed: "observed" },
      modelLine: (m, why) => `Forecast: ${m}${why ? ` (${why})` : ""}`,
      reasons: { training: "model not trained yet", "too-little-history": "too little history", "model-stale": "model out of date" },
      day: "Business day", operator: "Operator", gross: "Gross", discounts: "Discounts",
      refunds: "Refunds", net: "Net", charges: "Charges", revisions: "Revisions", session: "Session",
      lot: "Lot", status: "Status", entry: "Entry", payer: "Card / plate", total: "Total",
      statuses: { open: "no exit", flagged: "flagged" }, won: (n) => `KRW ${n.toLocaleString("en-US")}`,
      incompleteNote: (h) => `Sessions without an exit for over ${h} hours, and flagged ones`,
      businessDay: "Business day", settleRun: "Settle", reconcileRun: "Flag sessions open over 24 h",
      settled: (n) => `${n} settlements`, flagged: (n) => `${n} newly flagged`,
    },
  };
  const params = new URLSearchParams(location.search);
  const state = { lang: params.get("lang") === "en" ? "en" : "ko", data: null, me: null };
  window.parkingOperator = { state };  // for tests and the curious
  const $ = (id) => document.getElementById(id);
  const t = (key) => TEXT[state.lang][key];

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
    $("language").textContent = state.lang === "ko" ? "EN" : "한국어";
    if (state.data) render(state.data);
  }

  function headers() {
    const out = {};
    const token = sessionStorage.getItem(STORE.token);
    const tenant = sessionStorage.getItem(STORE.tenant);
    if (token) out.Authorization = `Bearer ${token}`;
    if (tenant) out["NGSILD-Tenant"] = tenant;
    return out;
  }

  function showLogin(message) {
    $("board").hidden = true;
    $("login").hidden = false;
    $("logout").hidden = true;
    $("who").textContent = "";
    $("login-error").textContent = message || "";
    document.body.dataset.state = "login";
  }

  async function signIn(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    const response = await fetch("/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("name").value.trim(), password: $("password").value }),
    });
    if (!response.ok) return showLogin(t("wrong"));
    const body = await response.json();
    sessionStorage.setItem(STORE.token, body.accessToken);
    const tenant = $("tenant").value.trim();
    if (tenant) sessionStorage.setItem(STORE.tenant, tenant);
    else sessionStorage.removeItem(STORE.tenant);
    $("password").value = "";
    await load();
  }

  function signOut() {
    sessionStorage.removeItem(STORE.token);
    sessionStorage.removeItem(STORE.tenant);
    state.data = null;
    showLogin();
  }

  async function load() {
    if (!sessionStorage.getItem(STORE.token)) return showLogin();
    const me = await fetch("/auth/me", { headers: headers() });
    if (me.status === 401) return signOut();
    state.me = await me.json();
    const roles = state.me.roles || [];
    if (!roles.some((r) => ["parking-operator", "operator", "admin"].includes(r))) {
      sessionStorage.removeItem(STORE.token);
      return showLogin(t("noRole"));
    }
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = state.me.name;
    $("status").textContent = t("loading");
    try {
      const response = await fetch(`${API}?days=14&lang=${state.lang}`, { headers: headers() });
      const body = await response.json();
      if (response.status === 401) return signOut();
      if (response.status === 403) throw new Error(t("forbidden"));
      if (!response.ok) throw new Error(body.detail || response.statusText);
      state.data = body;
      render(body);
      document.body.dataset.state = "ready";
    } catch (error) {
      $("status").textContent = `${t("failed")}: ${error.message}`;
      document.body.dataset.state = "failed";
    }
  }

  function clock(text, withDate) {
    const options = { timeZone: ZONE, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) Object.assign(options, { month: "2-digit", day: "2-digit" });
    return new Date(text).toLocaleString(state.lang === "ko" ? "ko-KR" : "en-GB", options);
  }

  function element(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    return node;
  }

  function chart(lot, now) {
    const width = 320, height = 120, left = 28, right = 6, top = 6, bottom = 16;
    const start = now - 24 * 3600e3, end = now + 3 * 3600e3;
    const capacity = lot.capacity || Math.max(1, ...lot.trend.map((p) => p.occupied));
    const x = (at) => left + ((new Date(at).getTime() - start) / (end - start)) * (width - left - right);
    const y = (value) => top + (1 - value / capacity) * (height - top - bottom);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `${lot.name}: ${t("past")}, ${t("ahead")}` });
    root.append(svg("line", { class: "capacity", x1: left, x2: width - right, y1: y(capacity), y2: y(capacity) }));
    for (const share of [0, 0.5, 1]) {
      const label = svg("text", { x: 2, y: y(capacity * share) + 3 });
      label.textContent = Math.round(capacity * share);
      root.append(label);
    }
    for (let hour = 0; hour <= 24; hour += 6) {
      const at = new Date(start + hour * 3600e3);
      const label = svg("text", { x: x(at) - 12, y: height - 3 });
      label.textContent = clock(at.toISOString());
      root.append(label);
    }
    if (lot.forecast.length) {
      const upper = lot.forecast.map((p) => `${x(p.at)},${y(p.high)}`);
      const lower = lot.forecast.slice().reverse().map((p) => `${x(p.at)},${y(p.low)}`);
      root.append(svg("polygon", { class: "band", points: [...upper, ...lower].join(" ") }));
    }
    const past = lot.trend.map((p) => `${x(p.at)},${y(p.occupied)}`).join(" ");
    if (past) root.append(svg("polyline", { class: "past", points: past }));
    const last = lot.trend[lot.trend.length - 1];
    const ahead = [...(last ? [last] : []), ...lot.forecast].map((p) => `${x(p.at)},${y(p.occupied)}`);
    if (lot.forecast.length) root.append(svg("polyline", { class: "ahead", points: ahead.join(" ") }));
    const marker = new Date(now).toISOString();
    root.append(svg("line", { class: "now", x1: x(marker), x2: x(marker), y1: top, y2: height - bottom }));
    return root;
  }

  function renderLots(body) {
    const holder = $("lots");
    holder.replaceChildren();
    const status = body.forecast;
    const why = status.reason ? t("reasons")[status.reason] || status.reason : "";
    $("model").textContent = t("modelLine")(t("model")[status.model] || status.model, why);
    if (!body.lots.length) holder.append(element("p", { class: "note" }, t("lotsNone")));
    const now = new Date(body.now).getTime();
    for (const lot of body.lots) {
      const card = element("article", { class: "lot", "data-lot": lot.id });
      card.append(element("h3", {}, lot.name));
      const facts = element("div", { class: "facts" });
      const last = lot.trend[lot.trend.length - 1];
      facts.append(element("span", {}, `${t("operator")}: ${lot.operatorId}`));
      if (lot.capacity) facts.append(element("span", {}, `${t("capacity")} ${lot.capacity}${t("spaces")}`));
      if (last) facts.append(element("span", {}, `${t("occupied")} ${Math.round(last.occupied)} (${clock(last.at)})`));
      const hour = lot.forecast.find((p) => p.at >= new Date(now + 3600e3 - 1).toISOString()) || lot.forecast[lot.forecast.length - 1];
      if (hour) facts.append(element("span", { class: "forecast" },
        `${t("ahead")} ${clock(hour.at)}: ${Math.round(hour.occupied)} (${Math.round(hour.low)}–${Math.round(hour.high)}) · ${t("model")[hour.model] || hour.model}`));
      card.append(facts, chart(lot, now));
      const legend = element("div", { class: "legend" });
      legend.innerHTML = "";
      for (const [colour, label] of [["var(--blue)", t("past")], ["var(--amber)", t("ahead")], ["var(--red)", t("capacity")]]) {
        const item = element("span", {}, label);
        const swatch = element("i");
        swatch.style.background = colour;
        item.prepend(swatch);
        legend.append(item);
      }
      card.append(legend);
      holder.append(card);
    }
  }

  function table(id, columns, rows, totals) {
    const node = $(id);
    const head = element("tr");
    for (const column of columns) head.append(element("th", {}, t(column.label)));
    node.tHead.replaceChildren(head);
    const body = node.tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const row = element("tr");
      row.append(element("td", { class: "empty", colspan: String(columns.length) }, t("none")));
      body.append(row);
      return;
    }
    for (const item of [...rows, ...(totals ? [totals] : [])]) {
      const row = element("tr", item === totals ? { class: "total" } : {});
      for (const column of columns) {
        const cell = element("td", {}, column.show(item));
        if (column.cls) cell.className = column.cls(item);
        row.append(cell);
      }
      body.append(row);
    }
  }

  function money(key) {
    return { label: key, show: (row) => (row[key] === "" ? "" : t("won")(row[key])) };
  }

  function render(body) {
    $("status").textContent = `${t("updated")(clock(body.now, true))} · ${
      body.operators === null ? t("allOps") : t("scope")(body.operators.join(", ") || t("none"))}`;
    renderLots(body);
    const sum = (rows, key) => rows.reduce((total, row) => total + row[key], 0);
    const revenueTotals = { businessDay: t("total"), operatorId: "", charges: sum(body.revenue, "charges") };
    for (const key of ["gross", "discounts", "refunds", "net"]) revenueTotals[key] = sum(body.revenue, key);
    const day = { label: "day", show: (row) => row.businessDay };
    const operator = { label: "operator", show: (row) => row.operatorId };
    const amounts = ["gross", "discounts", "refunds", "net"].map(money);
    table("revenue", [day, operator, ...amounts, { label: "charges", show: (row) => String(row.charges) }],
      body.revenue.slice().reverse(), body.revenue.length ? revenueTotals : null);
    table("settlements", [day, operator, ...amounts, { label: "revisions", show: (row) => String(row.revisions) }],
      body.settlements, null);
    table("incomplete", [
      { label: "session", show: (row) => row.sessionId },
      { label: "lot", show: (row) => row.lotId.replace(/^urn:ngsi-ld:[A-Za-z]+:/, "") },
      { label: "operator", show: (row) => row.operatorId },
      { label: "status", show: (row) => t("statuses")[row.status] || row.status, cls: (row) => `status-${row.status}` },
      { label: "entry", show: (row) => clock(row.entry, true) },
      { label: "payer", show: (row) => row.card || row.plate || "" },
    ], body.incomplete, null);
    $("incomplete").dataset.note = t("incompleteNote")(body.incompleteAfterHours);
  }

  async function post(path, body, result, done) {
    $(result).textContent = t("loading");
    try {
      const response = await fetch(`/mobility/v1/parking/payment/${path}`, {
        method: "POST", headers: { ...headers(), "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (response.status === 403) throw new Error(t("forbidden"));
      if (!response.ok) throw new Error(answer.detail || response.statusText);
      $(result).textContent = done(answer);
      await load();
    } catch (error) {
      $(result).textContent = `${t("failed")}: ${error.message}`;
    }
  }

  $("settle").addEventListener("submit", (event) => {
    event.preventDefault();
    post("settlements", { businessDay: $("settle-day").value }, "settle-result",
      (answer) => t("settled")(answer.settlements.length));
  });
  $("reconcile").addEventListener("submit", (event) => {
    event.preventDefault();
    post("reconciliation", { olderThanHours: 24 }, "reconcile-result",
      (answer) => t("flagged")(answer.flaggedNow));
  });
  const yesterday = new Date(Date.now() - 86400e3);
  $("settle-day").value = yesterday.toLocaleDateString("sv-SE", { timeZone: ZONE });

  $("language").addEventListener("click", () => {
    state.lang = state.lang === "ko" ? "en" : "ko";
    applyLanguage();
    if (state.data) load();
  });
  $("login").addEventListener("submit", (event) => { signIn(event).catch((e) => showLogin(e.message)); });
  $("logout").addEventListener("click", signOut);
  applyLanguage();
  load().catch((error) => showLogin(error.message));
})();
