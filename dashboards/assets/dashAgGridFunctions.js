// Cell helpers for dash-ag-grid (loaded from assets/, no CDN).
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

// Background bar showing max memory used as a share of configured memory.
dagfuncs.memoryBar = function (params) {
  var ratio = params.data ? params.data.memory_used_ratio : null;
  if (ratio === null || ratio === undefined || isNaN(ratio)) { return {}; }
  var pct = Math.max(0, Math.min(100, ratio * 100));
  var colour = pct > 90 ? "rgba(214,40,40,0.35)" : pct < 40 ? "rgba(42,157,143,0.35)" : "rgba(31,119,180,0.30)";
  return {
    background: "linear-gradient(90deg, " + colour + " " + pct + "%, transparent " + pct + "%)",
  };
};
