// The animated page (array_view_html.h): the frames as JSON in the page, drawn by a small script.
#include "simulator/array_view_html.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "simulator/report.h"

namespace tpusim {
namespace {

nlohmann::json number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  return v;
}
nlohmann::json optional_number(const std::optional<double>& v) { return v ? number(*v) : nlohmann::json(); }

nlohmann::json frame_json(const ArrayFrame& f) {
  const ArraySnapshot& a = f.array;
  const bool os = a.mode == SystolicMode::OutputStationary;
  nlohmann::json pes = nlohmann::json::array();
  nlohmann::json other = nlohmann::json::array();
  for (const PeRegisters& pe : a.pes) {
    const int bank = f.bank_shown(pe);
    pes.push_back({pe.useful() ? 1 : pe.active ? 2 : 0, os ? nlohmann::json() : number(pe.weight[bank]),
                   pe.moving_valid ? number(pe.moving) : nlohmann::json(),
                   pe.top_valid ? number(pe.top) : nlohmann::json(), pe.sum_valid ? number(pe.sum) : nlohmann::json()});
    if (!os) other.push_back(number(pe.weight[1 - f.bank_in_use]));
  }
  auto lanes = [](const std::vector<std::vector<std::optional<double>>>& waiting) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& lane : waiting) {
      nlohmann::json l = nlohmann::json::array();
      for (const auto& v : lane) l.push_back(optional_number(v));
      out.push_back(l);
    }
    return out;
  };
  nlohmann::json bottom = nlohmann::json::array();
  for (const auto& v : a.bottom) bottom.push_back(optional_number(v));
  nlohmann::json units = nlohmann::json::array();
  for (const UnitState& u : f.units) units.push_back({u.state, u.instruction, u.label});
  return {{"cycle", f.cycle},
          {"units", units},
          {"vector", f.vector},
          {"vectors", f.vectors},
          {"macs", f.macs},
          {"busy", f.busy_pes()},
          {"padding", f.padding_pes()},
          {"dram", {f.traffic.dram_read, f.traffic.dram_written}},
          {"buffers", {f.buffer_bytes_read(), f.buffer_bytes_written()}},
          {"pes", pes},
          {"left", lanes(a.left_waiting)},
          {"top", lanes(a.top_waiting)},
          {"bottom", bottom},
          {"bank", f.bank_in_use},
          {"shifting", a.shifting_bank},
          {"queued", a.shifting_bank >= 0 ? a.weight_rows_queued[a.shifting_bank] : 0},
          {"other", other}};
}

const char* kStyle = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px;
       color: #212121; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 8px 0; }
pre { font-size: 13px; background: #fafafa; border: 1px solid #eee; padding: 8px; display: inline-block; margin: 4px 0;
      max-width: 100%; overflow-x: auto; box-sizing: border-box; }
.controls { display: flex; align-items: center; gap: 8px; margin: 12px 0; flex-wrap: wrap; }
.controls button { font-size: 14px; padding: 4px 10px; }
#scrub { width: 360px; }
#counter { font-weight: 600; font-size: 16px; min-width: 150px; }
.status { font-size: 13px; margin: 2px 0; }
.status b { display: inline-block; width: 40px; }
.counters { display: flex; gap: 16px; font-size: 14px; margin: 8px 0; flex-wrap: wrap; }
.counters span { border: 1px solid #e0e0e0; border-radius: 6px; padding: 4px 10px; }
table.array { border-collapse: separate; border-spacing: 4px; margin-top: 8px; }
table.array td.pe { border: 1px solid #9e9e9e; border-radius: 6px; width: 88px; height: 58px; font-size: 12px;
                    vertical-align: top; padding: 3px 5px; font-family: ui-monospace, Menlo, Consolas, monospace; }
td.pe.active { background: #a5d6a7; border-color: #2e7d32; }
td.pe.holding { background: #fff3c4; }
td.pe.padding { background: #cfd8dc; border-style: dashed; }
td.pe.empty { background: #f5f5f5; color: #9e9e9e; }
td.pe .r { display: flex; justify-content: space-between; }
td.pe .k { color: #616161; }
td.wait { text-align: right; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: #1565c0;
          white-space: nowrap; }
td.out { text-align: center; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; color: #6a1b9a; }
td.head { text-align: center; font-size: 12px; color: #616161; }
.legend { display: flex; gap: 14px; font-size: 13px; margin: 10px 0; flex-wrap: wrap; }
.legend i { display: inline-block; width: 14px; height: 14px; border: 1px solid #9e9e9e; border-radius: 3px;
            vertical-align: middle; margin-right: 4px; }
#banks { font-size: 13px; margin-top: 8px; }
)";

// The script: draws frame i of FRAMES into the table built once from the first frame.
const char* kScript = R"JS(
(function () {
  const frames = JSON.parse(document.getElementById('frames').textContent);
  const meta = JSON.parse(document.getElementById('meta').textContent);
  document.body.dataset.frames = String(frames.length);
  const rows = meta.rows, cols = meta.cols, os = meta.os;
  const fmt = v => (v === null || v === undefined) ? '' : String(v);
  const table = document.getElementById('array');
  const cells = [], waits = [], tops = [], outs = [];
  // Column headings, then (os) the top operands waiting per column.
  let tr = table.insertRow();
  tr.insertCell().className = 'head';
  for (let c = 0; c < cols; ++c) { const td = tr.insertCell(); td.className = 'head'; td.textContent = 'col ' + c; }
  if (os) {
    tr = table.insertRow();
    tr.insertCell().className = 'wait';
    for (let c = 0; c < cols; ++c) { const td = tr.insertCell(); td.className = 'wait'; td.style.textAlign = 'center'; tops.push(td); }
  }
  for (let r = 0; r < rows; ++r) {
    tr = table.insertRow();
    const w = tr.insertCell(); w.className = 'wait'; waits.push(w);
    for (let c = 0; c < cols; ++c) {
      const td = tr.insertCell(); td.className = 'pe';
      td.innerHTML = '<div class="r"><span class="k">' + meta.roles[0] + '</span><span></span></div>' +
                     '<div class="r"><span class="k">' + meta.roles[1] + '</span><span></span></div>' +
                     '<div class="r"><span class="k">P</span><span></span></div>';
      cells.push(td);
    }
  }
  tr = table.insertRow();
  const label = tr.insertCell(); label.className = 'wait'; label.textContent = 'leaving \u2193';
  for (let c = 0; c < cols; ++c) { const td = tr.insertCell(); td.className = 'out'; outs.push(td); }

  const scrub = document.getElementById('scrub');
  scrub.max = String(frames.length - 1);
  let current = 0, timer = null;
  function show(i) {
    current = Math.max(0, Math.min(frames.length - 1, i));
    const f = frames[current];
    scrub.value = String(current);
    document.body.dataset.cycle = String(f.cycle);
    document.getElementById('counter').textContent = 'cycle ' + f.cycle + ' of ' + meta.total;
    const names = ['DMA', 'MXU', 'VPU'];
    document.getElementById('units').innerHTML = f.units.map((u, k) => {
      let s = '<div class="status"><b>' + names[k] + '</b>' + u[0];
      if (u[1]) s += ' \u00b7 ' + u[1];
      if (u[2]) s += ' \u201c' + u[2] + '\u201d';
      if (k === 1 && f.vector >= 0) s += ', vector ' + (f.vector + 1) + ' of ' + f.vectors + ' enters';
      return s + '</div>';
    }).join('');
    const pes = rows * cols;
    document.getElementById('busy').textContent = 'PEs busy ' + f.busy + ' of ' + pes +
        (f.padding ? ' (and ' + f.padding + ' multiplying padding)' : '') + ', idle ' + (pes - f.busy - f.padding);
    document.getElementById('macs').textContent = 'MACs so far ' + f.macs;
    document.getElementById('bytes').textContent = 'bytes moved: DRAM ' + f.dram[0] + ' read, ' + f.dram[1] +
        ' written; buffers ' + f.buffers[0] + ' read, ' + f.buffers[1] + ' written';
    for (let k = 0; k < pes; ++k) {
      const p = f.pes[k], td = cells[k];
      const spans = td.querySelectorAll('.r span:last-child');
      if (os) { spans[0].textContent = fmt(p[2]); spans[1].textContent = fmt(p[3]); }
      else { spans[0].textContent = fmt(p[1]); spans[1].textContent = fmt(p[2]); }
      spans[2].textContent = p[4] === null ? '.' : fmt(p[4]);
      const empty = p[2] === null && p[3] === null && p[4] === null;
      td.className = 'pe ' + (p[0] === 1 ? 'active' : p[0] === 2 ? 'padding' : (p[4] !== null ? 'holding' : (empty ? 'empty' : '')));
    }
    for (let r = 0; r < rows; ++r) {
      const lane = f.left[r] || [];
      waits[r].textContent = lane.length ? lane.slice().reverse().map(v => v === null ? '\u00b7' : v).join(' ') + ' \u2192' : '';
    }
    for (let c = 0; c < tops.length; ++c) {
      const lane = f.top[c] || [];
      tops[c].innerHTML = lane.length ? lane.slice().reverse().map(v => v === null ? '\u00b7' : v).join('<br>') + '<br>\u2193' : '';
    }
    for (let c = 0; c < cols; ++c) outs[c].textContent = fmt(f.bottom[c]);
    if (!os) {
      const note = b => f.shifting !== b ? '' : (f.queued > 0 ? ' (a tile shifting in, ' + f.queued + ' rows to go)'
                                                                   : ' (its last row shifts in now)');
      let s = 'weight banks: the PEs show bank ' + f.bank + note(f.bank) + '; bank ' + (1 - f.bank) + note(1 - f.bank) + ' holds ';
      for (let r = 0; r < rows; ++r) s += '[' + f.other.slice(r * cols, (r + 1) * cols).join(' ') + '] ';
      document.getElementById('banks').textContent = s;
    }
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; } document.getElementById('play').textContent = 'play'; }
  function play() {
    if (timer) { stop(); return; }
    if (current === frames.length - 1) show(0);
    document.getElementById('play').textContent = 'pause';
    timer = setInterval(() => { if (current >= frames.length - 1) stop(); else show(current + 1); },
                        Number(document.getElementById('speed').value));
  }
  document.getElementById('play').onclick = play;
  document.getElementById('prev').onclick = () => { stop(); show(current - 1); };
  document.getElementById('next').onclick = () => { stop(); show(current + 1); };
  document.getElementById('first').onclick = () => { stop(); show(0); };
  document.getElementById('last').onclick = () => { stop(); show(frames.length - 1); };
  scrub.oninput = () => { stop(); show(Number(scrub.value)); };
  document.addEventListener('keydown', e => {
    if (e.key === 'ArrowRight') { stop(); show(current + 1); }
    else if (e.key === 'ArrowLeft') { stop(); show(current - 1); }
    else if (e.key === ' ') { e.preventDefault(); play(); }
  });
  const m = /cycle=(\d+)/.exec(location.hash);
  let start = meta.start;
  if (m) { const want = Number(m[1]); const k = frames.findIndex(f => f.cycle === want); if (k >= 0) start = k; }
  show(start);
})();
)JS";

}  // namespace

std::string animation_html(const std::vector<ArrayFrame>& frames, const AnimationPage& page) {
  nlohmann::json list = nlohmann::json::array();
  for (const ArrayFrame& f : frames) list.push_back(frame_json(f));
  const bool os = page.view.dataflow == Dataflow::OutputStationary;
  const bool is = page.view.dataflow == Dataflow::InputStationary;
  nlohmann::json meta = {{"rows", frames.empty() ? 0 : frames.front().array.rows},
                         {"cols", frames.empty() ? 0 : frames.front().array.cols},
                         {"os", os},
                         {"total", page.view.total_cycles},
                         {"start", page.start_frame},
                         {"roles", os ? nlohmann::json{"A", "B"} : is ? nlohmann::json{"A", "B"} : nlohmann::json{"B", "A"}}};
  // '<' never appears unescaped inside the script elements.
  auto embed = [](const nlohmann::json& j) {
    std::string s = j.dump();
    std::string out;
    for (char c : s) out += c == '<' ? std::string("\\u003c") : std::string(1, c);
    return out;
  };
  std::string legend;
  if (os) {
    legend = "<span><b>A</b> moves right, <b>B</b> moves down; each PE keeps its <b>P</b> = sum of A &times; B</span>";
  } else {
    legend = fmt::format("<span><b>{}</b> stationary (in the PE), <b>{}</b> moving right, <b>P</b> partial sum moving down</span>",
                         is ? "A" : "B", is ? "B" : "A");
  }
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<title>" + html_escape(page.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  html += "<h1>" + html_escape(page.title) + "</h1>\n";
  html += "<pre>" + html_escape(page.intro) + "</pre>\n";
  html += "<div class=\"controls\"><button id=\"first\">&laquo; first</button><button id=\"prev\">&#x25C0; step</button>"
          "<button id=\"play\">play</button><button id=\"next\">step &#x25B6;</button><button id=\"last\">last &raquo;</button>"
          "<input type=\"range\" id=\"scrub\" min=\"0\" max=\"0\" value=\"0\">"
          "<select id=\"speed\"><option value=\"1000\">1 cycle/s</option><option value=\"400\" selected>2.5 cycles/s</option>"
          "<option value=\"150\">7 cycles/s</option><option value=\"50\">20 cycles/s</option></select>"
          "<span id=\"counter\"></span></div>\n";
  html += "<div id=\"units\"></div>\n";
  html += "<div class=\"counters\"><span id=\"busy\"></span><span id=\"macs\"></span><span id=\"bytes\"></span></div>\n";
  html += "<div class=\"legend\"><span><i style=\"background:#a5d6a7\"></i>multiplied this cycle</span>"
          "<span><i style=\"background:#fff3c4\"></i>holds a partial sum, idle</span>"
          "<span><i style=\"background:#cfd8dc\"></i>multiplies an edge tile's padding (wasted)</span>"
          "<span><i style=\"background:#f5f5f5\"></i>empty</span>" +
          legend + "<span style=\"color:#1565c0\">blue: operands waiting in the skew line</span>"
                   "<span style=\"color:#6a1b9a\">purple: results leaving into the accumulators</span></div>\n";
  html += "<table class=\"array\" id=\"array\"></table>\n<div id=\"banks\"></div>\n";
  html += "<pre>" + html_escape(page.outro) + "</pre>\n";
  html += "<p style=\"font-size:12px;color:#616161\">Keys: &larr; &rarr; step, space plays. Every frame is the PE-level "
          "simulator's registers at the end of that cycle. Open with #cycle=N to start at cycle N.</p>\n";
  html += "<script type=\"application/json\" id=\"frames\">" + embed(list) + "</script>\n";
  html += "<script type=\"application/json\" id=\"meta\">" + embed(meta) + "</script>\n";
  html += std::string("<script>") + kScript + "</script>\n</body>\n</html>\n";
  return html;
}

}  // namespace tpusim
