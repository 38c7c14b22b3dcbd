// The incident panel's linked services: dispatch packages for 112, 119 and disaster response.
// Operators send them from here (the API checks who may); an agency sees the ones sent to it.
// Routes in the packages (escape routes, the fire engines' access route) are drawn on the map.
(() => {
  "use strict";

  const TEXT = {
    ko: {
      linked: "연계 서비스", escape: "112 도주 경로 전송", fireSite: "119 현장 정보 전송",
      greenWave: "긴급차량 우선신호 요청", disaster: "재난 정보·문자 준비", packages: "전송된 정보",
      routes: "도주 경로", cameras: "CCTV", minutes: "분", metres: "m", hydrants: "소화전",
      station: "출동 소방서", signals: "신호기", facilities: "위험 시설", messages: "발송 문안",
      grade: "화재위험등급", noPackages: "아직 전송된 정보가 없습니다.", sentTo: "수신", queued: "요청됨",
      failed: "실패", leaves: "구역 밖으로", people: "인원",
    },
    en: {
      linked: "Linked services", escape: "Send escape routes to 112", fireSite: "Send site package to 119",
      greenWave: "Request a green wave", disaster: "Prepare disaster alerts", packages: "Sent packages",
      routes: "escape routes", cameras: "cameras", minutes: "min", metres: "m", hydrants: "hydrants",
      station: "station", signals: "signals", facilities: "facilities at risk", messages: "messages",
      grade: "fire-risk grade", noPackages: "Nothing sent yet.", sentTo: "to", queued: "queued",
      failed: "failed", leaves: "leaves the district", people: "people",
    },
  };
  // Which package an incident type calls for, and the agency principal it goes to.
  const OFFERS = {
    crime: [{ kind: "escape-routes", label: "escape", agency: "police" }],
    "vulnerable-person": [{ kind: "escape-routes", label: "escape", agency: "police" }],
    fire: [{ kind: "fire-site", label: "fireSite", agency: "fire" }],
    rescue: [{ kind: "fire-site", label: "fireSite", agency: "fire" }],
    disaster: [{ kind: "disaster", label: "disaster", agency: "" }],
  };
  const HAZARDS = { flood: "flood", "heavy-rain": "heavy-rain", earthquake: "earthquake", "fine-dust": "fine-dust" };
  const SOURCE = "incident-packages";

  function create(api) {
    const text = (key) => TEXT[api.state.language][key] ?? TEXT.ko[key] ?? key;
    const { element, button, call } = api;

    async function send(detail, offer) {
      const base = `/ops/v1/incidents/${encodeURIComponent(detail.id)}/packages/${offer.kind}`;
      const body = offer.agency ? { agency: offer.agency } : {};
      if (offer.kind === "disaster") body.hazard = HAZARDS[detail.subtype] ?? "heavy-rain";
      try {
        await call("POST", base, body);
        api.state.problem = "";
      } catch (error) {
        api.state.problem = error.message;
      }
      await api.refresh();
    }

    async function greenWave(detail, pack) {
      const url = `/ops/v1/incidents/${encodeURIComponent(detail.id)}/packages/${encodeURIComponent(pack.id)}/green-wave`;
      try {
        const result = await call("POST", url, {});
        api.state.greenWaves.set(pack.id, result);
        api.state.problem = "";
      } catch (error) {
        api.state.problem = error.message;
      }
      await api.refresh();
    }

    function summary(pack) {
      const body = pack.body || {};
      if (pack.kind === "escape-routes") {
        const routes = body.routes || [];
        const cameras = routes.reduce((n, r) => n + (r.cameras || []).length, 0);
        const lines = routes.map((r) => {
          const roads = (r.roads || []).filter(Boolean).slice(0, 3).join(" → ");
          const minutes = Math.max(1, Math.round((r.travelSeconds || 0) / 60));
          return `${r.rank}. ${roads || "—"} · ${Math.round(r.length)}${text("metres")} · ${minutes}${text("minutes")} · ${text("cameras")} ${(r.cameras || []).length}${r.leavesDistrict ? ` · ${text("leaves")}` : ""}`;
        });
        return [`${text("routes")} ${routes.length} · ${text("cameras")} ${cameras}`, ...lines];
      }
      if (pack.kind === "fire-site") {
        const lines = [];
        const building = body.building;
        if (building) {
          const grade = building.fireRiskGrade;
          lines.push(`${api.pick(building.name)}${grade ? ` · ${text("grade")} ${api.pick(grade)}` : ""}`);
        }
        const route = body.route;
        const parts = [`${text("hydrants")} ${(body.hydrants || []).length}`, `${text("signals")} ${(body.signals || []).length}`];
        if (body.station) parts.unshift(`${text("station")} ${api.pick(body.station.name)}`);
        if (route) parts.push(`${Math.round(route.length)}${text("metres")} · ${Math.max(1, Math.round(route.travelSeconds / 60))}${text("minutes")}`);
        lines.push(parts.join(" · "));
        return lines;
      }
      if (pack.kind === "disaster") {
        const people = body.people?.peopleCounted;
        return [
          `${api.pick(body.hazardName)} · ${body.level ?? ""}`,
          `${text("facilities")} ${(body.facilities || []).length} · ${text("messages")} ${(body.messages || []).length}${people !== undefined ? ` · ${text("people")} ${people}` : ""}`,
        ];
      }
      return [api.pick(pack.kindName)];
    }

    function render(box, detail) {
      const offers = api.canManage() && detail.status !== "closed" ? OFFERS[detail.type] ?? [] : [];
      const packages = api.state.packages;
      if (!offers.length && !packages.length) {
        draw([]);
        return;
      }
      api.section(box, text("linked"));
      if (offers.length) {
        const actions = element("div", "actions linked-actions");
        for (const offer of offers) {
          const control = button(text(offer.label), "", () => send(detail, offer));
          control.dataset.package = offer.kind;
          actions.append(control);
        }
        box.append(actions);
      }
      const list = element("ul", "packages");
      if (!packages.length) list.append(element("li", "muted", text("noPackages")));
      for (const pack of packages) {
        const item = element("li");
        item.dataset.package = pack.kind;
        const head = `${api.pick(pack.kindName)} · ${text("sentTo")} ${pack.agency ?? "—"} · ${api.clockTime(pack.createdAt)}`;
        item.append(element("div", "what", head));
        for (const line of summary(pack)) item.append(element("div", "muted", line));
        if (pack.kind === "fire-site" && api.canManage() && (pack.body?.signals || []).length) {
          const wave = api.state.greenWaves.get(pack.id);
          if (wave) {
            const signals = wave.signals || [];
            const failed = signals.length - wave.queued;
            const line = `${text("greenWave")}: ${text("queued")} ${wave.queued}/${signals.length}${failed ? ` (${text("failed")} ${failed}: ${signals.find((x) => x.outcome !== "queued")?.reason ?? ""})` : ""}`;
            item.append(element("div", "green-wave", line));
          } else {
            const control = button(text("greenWave"), "secondary", () => greenWave(detail, pack));
            control.dataset.action = "green-wave";
            item.append(control);
          }
        }
        list.append(item);
      }
      box.append(list);
      draw(packages);
    }

    // The routes of the selected incident's packages, on the map: red dashed for escape routes,
    // blue for the fire engines' way in.
    function draw(packages) {
      const map = window.livemap?.state?.map;
      if (!map || !map.isStyleLoaded()) return;
      const features = [];
      for (const pack of packages) {
        if (pack.kind === "escape-routes") {
          for (const route of pack.body?.routes || []) {
            if (route.geometry) features.push({ type: "Feature", geometry: route.geometry, properties: { role: "escape", rank: route.rank } });
          }
        } else if (pack.kind === "fire-site" && pack.body?.route?.geometry) {
          features.push({ type: "Feature", geometry: pack.body.route.geometry, properties: { role: "access" } });
        }
      }
      const data = { type: "FeatureCollection", features };
      const source = map.getSource(SOURCE);
      if (source) {
        source.setData(data);
        return;
      }
      if (!features.length) return;
      map.addSource(SOURCE, { type: "geojson", data });
      const line = { type: "line", source: SOURCE, layout: { "line-cap": "round", "line-join": "round" } };
      map.addLayer({
        ...line,
        id: `${SOURCE}-access`,
        filter: ["==", ["get", "role"], "access"],
        paint: { "line-color": "#2563eb", "line-width": 5, "line-opacity": 0.85 },
      });
      map.addLayer({
        ...line,
        id: `${SOURCE}-escape`,
        filter: ["==", ["get", "role"], "escape"],
        paint: { "line-color": "#dc2626", "line-width": 4, "line-opacity": 0.85, "line-dasharray": [2, 1.5] },
      });
    }

    return { render, draw };
  }

  window.dashboardLinked = { create };
})();
