/* Hymy results charts. Plain ES2017, no modules, no build step.
 *
 * Draws every <canvas data-chart="ID"> from the JSON spec in
 * <script type="application/json" id="ID"> (the server embeds it; the CSP allows no inline
 * script). Needs the vendored Chart.js (static/vendor/chart.js/chart.umd.js) loaded first.
 * If Chart.js is missing, or a spec is broken, nothing is drawn: the table beside each chart
 * carries the same figures.
 *
 * Spec: {kind: "trend" | "bars" | "ranges", labels: [...], value: [... null = suppressed],
 *        low: [...], high: [...], value_label, interval_label, y_min, y_max,
 *        target, target_label}
 * Categories only (ISO dates come as labels): no time axis, so no date adapter is needed.
 */
(function () {
  'use strict';

  var MAIN = '#1f4e79';                       // dark blue, 8.7:1 on white
  var MAIN_FILL = 'rgba(31, 78, 121, 0.85)';
  var BAND = 'rgba(110, 110, 110, 0.22)';     // light grey fill
  var BAND_EDGE = '#6e6e6e';                  // thin grey border, 5.1:1
  var TARGET = '#b35900';                     // dark orange, 4.8:1
  var INK = '#1b1f24';
  var GRID = '#d5dbe1';

  function finite(x) {
    return typeof x === 'number' && isFinite(x) ? x : null;
  }

  // One entry per label; anything missing or not a number becomes null (a gap).
  function series(arr, n) {
    var out = [];
    for (var i = 0; i < n; i++) {
      out.push(Array.isArray(arr) ? finite(arr[i]) : null);
    }
    return out;
  }

  function hasAny(arr) {
    return arr.some(function (x) { return x !== null; });
  }

  function numberFormat() {
    var lang = document.documentElement.lang || undefined;
    try {
      return new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
    } catch (e) {
      return new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
    }
  }

  function build(spec, box) {
    var kind = spec.kind;
    if (kind !== 'trend' && kind !== 'bars' && kind !== 'ranges' && kind !== 'stacked') {
      return null;
    }
    var labels = Array.isArray(spec.labels) ? spec.labels.map(String) : [];
    var n = labels.length;
    if (!n) {
      return null;
    }
    if (kind === 'stacked') {
      return stacked(spec, labels, n);
    }
    var fmt = numberFormat();
    var num = function (x) { return x === null || x === undefined ? '' : fmt.format(x); };
    var value = series(spec.value, n);
    var low = series(spec.low, n);
    var high = series(spec.high, n);
    var withInterval = hasAny(low) && hasAny(high);
    var target = finite(spec.target);
    var valueLabel = spec.value_label ? String(spec.value_label) : '';
    var intervalLabel = spec.interval_label ? String(spec.interval_label) : '';
    var targetLabel = spec.target_label ? String(spec.target_label) : '';
    var horizontal = kind === 'ranges';
    var datasets = [];
    var intervalIndex = -1;  // dataset whose tooltip line shows "low–high"
    var lowIndex = -1;       // helper datasets, hidden from legend and tooltip
    var whiskerIndex = -1;

    if (kind === 'bars') {
      datasets.push({
        type: 'bar', label: valueLabel, data: value, order: 0,
        backgroundColor: MAIN_FILL, borderColor: MAIN, borderWidth: 1,
        pointStyle: 'rect'
      });
    } else {
      // Main series: solid line with circle markers; nulls stay gaps (spanGaps false).
      datasets.push({
        type: 'line', label: valueLabel, data: value, order: 0,
        borderColor: MAIN, backgroundColor: MAIN, borderWidth: horizontal ? 0 : 2.5,
        showLine: !horizontal, spanGaps: false,
        pointStyle: 'circle', pointRadius: horizontal ? 6 : 4, pointHoverRadius: horizontal ? 8 : 6,
        pointBorderColor: '#ffffff', pointBorderWidth: horizontal ? 1.5 : 1,
        pointBackgroundColor: MAIN
      });
    }

    if (withInterval && kind === 'trend') {
      // Band: "low" line (hidden from legend) and "high" line filled down to it.
      lowIndex = datasets.length;
      datasets.push({
        type: 'line', label: intervalLabel, data: low, order: 3,
        borderColor: BAND_EDGE, borderWidth: 1, backgroundColor: BAND,
        pointRadius: 0, pointHoverRadius: 0, pointHitRadius: 0, spanGaps: false, fill: false,
        pointStyle: 'rect'
      });
      intervalIndex = datasets.length;
      datasets.push({
        type: 'line', label: intervalLabel, data: high, order: 2,
        borderColor: BAND_EDGE, borderWidth: 1, backgroundColor: BAND,
        pointRadius: 0, pointHoverRadius: 0, pointHitRadius: 0, spanGaps: false,
        fill: { target: lowIndex }, pointStyle: 'rect'
      });
      // A band needs a neighbour on one side at least; where an interval stands alone
      // (suppressed cells both sides) it is drawn as a narrow floating bar instead.
      var alone = low.map(function (lo, i) {
        var hi = high[i];
        var before = i > 0 && low[i - 1] !== null && high[i - 1] !== null;
        var after = i < n - 1 && low[i + 1] !== null && high[i + 1] !== null;
        return lo !== null && hi !== null && !before && !after ? [lo, hi] : null;
      });
      if (hasAny(alone)) {
        whiskerIndex = datasets.length;
        datasets.push({
          type: 'bar', label: intervalLabel, data: alone, order: 2,
          backgroundColor: BAND, borderColor: BAND_EDGE, borderWidth: 1, borderSkipped: false,
          maxBarThickness: 14, pointStyle: 'rect'
        });
      }
    } else if (withInterval && kind === 'ranges') {
      // Floating horizontal bar [low, high] per unit.
      intervalIndex = datasets.length;
      datasets.push({
        type: 'bar', label: intervalLabel, order: 2,
        data: low.map(function (lo, i) {
          return lo !== null && high[i] !== null ? [lo, high[i]] : null;
        }),
        backgroundColor: BAND, borderColor: BAND_EDGE, borderWidth: 1, borderSkipped: false,
        barPercentage: 0.7, categoryPercentage: 0.9, pointStyle: 'rect'
      });
    }

    if (target !== null) {
      // Reference line as an ordinary dataset (so it is in the legend): dashed, diamonds.
      datasets.push({
        type: 'line', label: targetLabel, order: 1,
        data: labels.map(function () { return target; }),
        borderColor: TARGET, backgroundColor: TARGET, borderWidth: 2, borderDash: [8, 5],
        pointStyle: 'rectRot', pointRadius: 4, pointHoverRadius: 6,
        pointBackgroundColor: '#ffffff', pointBorderColor: TARGET, pointBorderWidth: 2,
        fill: false, spanGaps: true
      });
    }

    if (horizontal && box && box.classList.contains('chart-box')) {
      // Room for every unit: grow the fixed-height box with the number of rows.
      box.style.height = Math.max(18, 5 + n * 1.75) + 'rem';
    }

    var valueAxis = {
      type: 'linear',
      title: { display: !!valueLabel, text: valueLabel, color: INK },
      grid: { color: GRID },
      ticks: { color: INK }
    };
    var yMin = finite(spec.y_min);
    var yMax = finite(spec.y_max);
    if (kind !== 'bars' && (yMin === null || yMax === null)) {
      valueAxis.grace = '5%';  // keep markers and bands off the frame
    }
    if (yMin !== null) { valueAxis.min = yMin; }
    if (yMax !== null) { valueAxis.max = yMax; }
    // Counts start at zero; intervals and trends do not (the floating bars would otherwise
    // pull in zero through Chart.js's bar defaults).
    valueAxis.beginAtZero = kind === 'bars' && yMin === null;
    var categoryAxis = {
      type: 'category',
      offset: true,  // half a step of room at both ends: edge markers are not cut
      grid: { color: GRID, display: kind === 'trend' },
      ticks: { color: INK, autoSkip: !horizontal }
    };

    return {
      type: kind === 'trend' ? 'line' : 'bar',
      data: { labels: labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? 'y' : 'x',
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        // Crisp when printed; a few charts a page, so the larger canvas costs little.
        devicePixelRatio: Math.max(window.devicePixelRatio || 1, 2),
        locale: document.documentElement.lang || undefined,
        interaction: { mode: 'index', axis: horizontal ? 'y' : 'x', intersect: false },
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
        plugins: {
          legend: {
            display: true,
            position: 'bottom',
            labels: {
              color: INK,
              usePointStyle: true,
              padding: 16,
              filter: function (item) {
                return item.datasetIndex !== lowIndex && item.datasetIndex !== whiskerIndex &&
                  !!item.text;
              }
            }
          },
          tooltip: {
            filter: function (item) {
              if (item.datasetIndex === lowIndex || item.datasetIndex === whiskerIndex) {
                return false;
              }
              if (item.datasetIndex === intervalIndex) {
                return low[item.dataIndex] !== null && high[item.dataIndex] !== null;
              }
              return item.raw !== null && item.raw !== undefined;
            },
            callbacks: {
              label: function (item) {
                var name = item.dataset.label ? item.dataset.label + ': ' : '';
                var i = item.dataIndex;
                if (item.datasetIndex === intervalIndex) {
                  if (low[i] === null || high[i] === null) { return ''; }
                  return name + num(low[i]) + '\u2013' + num(high[i]);
                }
                var v = horizontal ? item.parsed.x : item.parsed.y;
                return name + num(v);
              }
            }
          }
        }
      }
    };
  }

  // Stacked bars, one stack per label (a theme's texts by tone): spec.stacks is
  // [{label, values, colour}], colours chosen server-side with a pattern-free, labelled legend.
  function stacked(spec, labels, n) {
    var stacks = Array.isArray(spec.stacks) ? spec.stacks : [];
    var datasets = stacks.map(function (st) {
      var colour = /^#[0-9a-fA-F]{6}$/.test(String(st.colour)) ? String(st.colour) : MAIN;
      return {
        type: 'bar', label: String(st.label || ''), data: series(st.values, n),
        backgroundColor: colour, borderColor: '#ffffff', borderWidth: 1, pointStyle: 'rect'
      };
    });
    var valueLabel = spec.value_label ? String(spec.value_label) : '';
    return {
      type: 'bar',
      data: { labels: labels, datasets: datasets },
      options: {
        indexAxis: 'y',
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        devicePixelRatio: Math.max(window.devicePixelRatio || 1, 2),
        locale: document.documentElement.lang || undefined,
        scales: {
          x: { stacked: true, beginAtZero: true, title: { display: !!valueLabel, text: valueLabel, color: INK },
               grid: { color: GRID }, ticks: { color: INK, precision: 0 } },
          y: { stacked: true, grid: { display: false }, ticks: { color: INK } }
        },
        plugins: {
          legend: { display: true, position: 'bottom', labels: { color: INK, usePointStyle: true, padding: 16 } },
          tooltip: { mode: 'index', intersect: false }
        }
      }
    };
  }

  function drawAll() {
    if (typeof window.Chart !== 'function') {
      return;  // library failed to load: the tables carry the figures
    }
    window.Chart.defaults.font.family = window.getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = INK;
    var charts = [];
    var canvases = document.querySelectorAll('canvas[data-chart]');
    Array.prototype.forEach.call(canvases, function (canvas) {
      try {
        var source = document.getElementById(canvas.getAttribute('data-chart'));
        if (!source) { return; }
        var spec = JSON.parse(source.textContent);
        var config = build(spec || {}, canvas.parentElement);
        if (config) {
          charts.push(new window.Chart(canvas, config));
        }
      } catch (e) {
        if (window.console) { window.console.error('results chart', e); }
      }
    });
    if (charts.length) {
      var resize = function () {
        charts.forEach(function (c) { c.resize(); });
      };
      window.addEventListener('beforeprint', resize);
      window.addEventListener('afterprint', resize);
    }
  }

  // "Print or save as PDF" buttons (no inline handlers: the page's CSP forbids them).
  function printButtons() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-print]'), function (button) {
      button.addEventListener('click', function () { window.print(); });
    });
  }

  function start() {
    printButtons();
    drawAll();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
