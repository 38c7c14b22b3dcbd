// Time-series charts drawn as SVG by hand (no library): a line with its area, time and value
// axes, the last value labelled. window.opsCharts.line(container, points, options).
(() => {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const node = (tag, attributes = {}, text) => {
    const element = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  };

  // Round tick steps (1, 2, 5 times a power of ten) covering [low, high] in about `count` steps.
  function ticks(low, high, count) {
    if (high === low) return [low];
    const raw = (high - low) / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const first = Math.ceil(low / step) * step;
    const found = [];
    for (let value = first; value <= high + step * 1e-9; value += step) found.push(Number(value.toFixed(10)));
    return found;
  }

  // points: [[timeMs, value], ...] sorted by time; options: {unit, language, empty}.
  function line(container, points, options = {}) {
    const width = 372, height = 150, left = 38, right = 10, top = 12, bottom = 22;
    const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
    container.replaceChildren(svg);
    if (!points.length) {
      svg.append(node("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "none" }, options.empty ?? "–"));
      return svg;
    }
    const times = points.map((p) => p[0]);
    const values = points.map((p) => p[1]);
    let [t0, t1] = [Math.min(...times), Math.max(...times)];
    if (t0 === t1) [t0, t1] = [t0 - 60000, t1 + 60000];
    let [v0, v1] = [Math.min(...values), Math.max(...values)];
    const pad = (v1 - v0) * 0.1 || Math.abs(v1) * 0.1 || 1;
    v0 = v0 >= 0 && v0 - pad < 0 ? 0 : v0 - pad;
    v1 += pad;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
    const y = (v) => top + (1 - (v - v0) / (v1 - v0)) * (height - top - bottom);
    const locale = options.language === "en" ? "en-GB" : "ko-KR";
    for (const value of ticks(v0, v1, 4)) {
      svg.append(node("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
      svg.append(node("text", { x: left - 4, y: y(value) + 3, "text-anchor": "end", class: "axis" },
        value.toLocaleString(locale, { maximumFractionDigits: 1 })));
    }
    const clock = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Seoul" });
    const span = t1 - t0;
    const minutes = [5, 10, 15, 30, 60, 120, 180, 360, 720].find((m) => span / (m * 60000) <= 5) ?? 1440;
    const step = minutes * 60000;
    for (let time = Math.ceil(t0 / step) * step; time <= t1; time += step) {
      svg.append(node("text", { x: x(time), y: height - 6, "text-anchor": "middle", class: "axis" }, clock.format(time)));
    }
    const path = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    const base = y(v0).toFixed(1);
    svg.append(node("path", { d: `${path}L${x(points.at(-1)[0]).toFixed(1)},${base}L${x(points[0][0]).toFixed(1)},${base}Z`, class: "area" }));
    svg.append(node("path", { d: path, class: "line" }));
    const [lastTime, lastValue] = points.at(-1);
    svg.append(node("circle", { cx: x(lastTime), cy: y(lastValue), r: 3.5, class: "dot" }));
    const label = `${lastValue.toLocaleString(locale, { maximumFractionDigits: 1 })}${options.unit ? ` ${options.unit}` : ""}`;
    svg.append(node("text", { x: Math.min(x(lastTime), width - right - 2), y: Math.max(y(lastValue) - 7, 10), "text-anchor": "end", class: "axis" }, label));
    return svg;
  }

  window.opsCharts = { line, ticks };
})();
