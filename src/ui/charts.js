// Tiny SVG charts: a sparkline of a series, bars of labelled values. Sized by attributes,
// coloured by the stylesheet.
import { svg, el } from "./dom.js";

export function sparkline(points, { width = 160, height = 36 } = {}) {
  const max = Math.max(1, ...points);
  const step = points.length > 1 ? width / (points.length - 1) : width;
  const coords = points.map((p, i) => `${(i * step).toFixed(1)},${(height - 2 - (p / max) * (height - 4)).toFixed(1)}`);
  return svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" },
    svg("polyline", { points: coords.join(" ") }));
}

export function bars(items, { width = 360, row = 20 } = {}) {
  const max = Math.max(1, ...items.map(([, v]) => v));
  const label = 150;
  const height = Math.max(row, items.length * row);
  return svg("svg", { class: "bars", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" },
    ...items.map(([name, v], i) => {
      const w = ((width - label - 50) * v) / max;
      const text = svg("text", { x: 0, y: i * row + 14 });
      text.textContent = name;
      const count = svg("text", { x: label + w + 6, y: i * row + 14 });
      count.textContent = String(v);
      return svg("g", {}, text, svg("rect", { x: label, y: i * row + 4, width: Math.max(1, w), height: row - 8 }), count);
    }));
}

export const legend = (text) => el("div", { class: "muted small" }, text);
