// Cell helpers for dash-ag-grid (loaded from assets/, no CDN).
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

function missing(v) { return v === null || v === undefined || (typeof v === "number" && isNaN(v)); }

// Background bar showing max memory used as a share of configured memory.
dagfuncs.memoryBar = function (params) {
  var ratio = params.data ? params.data.memory_used_ratio : null;
  if (missing(ratio)) { return {}; }
  var pct = Math.max(0, Math.min(100, ratio * 100));
  var colour = pct > 90 ? "rgba(214,40,40,0.35)" : pct < 40 ? "rgba(42,157,143,0.35)" : "rgba(31,119,180,0.30)";
  return {
    background: "linear-gradient(90deg, " + colour + " " + pct + "%, transparent " + pct + "%)",
  };
};

// Readable numbers, the same as dashboards/format.py: 1.2 k, 3.4 s, $12.30, 1.23 %.
dagfuncs.fmtCount = function (v) {
  if (missing(v)) { return "—"; }
  var a = Math.abs(v);
  if (a >= 1e9) { return (v / 1e9).toFixed(1) + " B"; }
  if (a >= 1e6) { return (v / 1e6).toFixed(1) + " M"; }
  if (a >= 1e3) { return (v / 1e3).toFixed(1) + " k"; }
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
};
dagfuncs.fmtDuration = function (v) {
  if (missing(v)) { return "—"; }
  if (v >= 60000) { return (v / 60000).toFixed(1) + " min"; }
  if (v >= 1000) { return (v / 1000).toFixed(1) + " s"; }
  return v >= 10 ? v.toFixed(0) + " ms" : v.toFixed(1) + " ms";
};
dagfuncs.fmtUsd = function (v) {
  if (missing(v)) { return "—"; }
  var sign = v < 0 ? "-" : "";
  var a = Math.abs(v);
  if (a >= 10000) { return sign + "$" + dagfuncs.fmtCount(a); }
  if (a > 0 && a < 0.01) { return sign + "$" + a.toFixed(4); }
  return sign + "$" + a.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
};
dagfuncs.fmtPct = function (v) {
  if (missing(v)) { return "—"; }
  return (v < 0.1 ? (v * 100).toFixed(2) : (v * 100).toFixed(1)) + " %";
};
dagfuncs.fmtMb = function (v) {
  if (missing(v)) { return "—"; }
  return Math.round(v).toLocaleString("en-US") + " MB";
};
// CSV export: each cell as the grid shows it, except text that a spreadsheet would run as
// a formula (=, +, -, @, tab, CR first), which gets a leading ' (as the command line's CSV).
dagfuncs.csvCell = function (params) {
  var v = params.value;
  if (typeof v === "string" && v.length && "=+-@\t\r".indexOf(v.charAt(0)) >= 0) { return "'" + v; }
  return params.formatValue ? params.formatValue(v) : v;
};
