// `tpusim explain`: the animated page in headless Chromium, the terminal view driven through
// tmux, and the printed frames against an independent run of the same program.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <regex>
#include <thread>

#include "browser.h"
#include "test_util.h"

using namespace tpusim::test;

namespace {

// The run's total cycles, from `tpusim run` of the program explain prints: an independent
// count of the frames there must be.
int64_t cycles_of_program(const std::string& explain_arguments, const std::string& run_arguments) {
  const std::string dir = make_temp_dir("explain-program");
  auto p = run_tpusim("explain gemm " + explain_arguments + " --program");
  REQUIRE(p.exit_code == 0);
  write_text_file(dir + "/gemm.tpu", p.out);
  auto r = run_tpusim("run " + dir + "/gemm.tpu " + run_arguments + " --fidelity pe -q --json " + dir + "/r.json");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(read_text_file(dir + "/r.json"))["total_cycles"].get<int64_t>();
}

// The lines of the frame of `cycle` in `text`: from "cycle N of" through the legend line.
std::vector<std::string> frame_lines(const std::string& text, int64_t cycle) {
  std::vector<std::string> lines, out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  const std::string head = "cycle " + std::to_string(cycle) + " of ";
  bool inside = false;
  for (const std::string& line : lines) {
    if (line.rfind(head, 0) == 0) inside = true;
    if (!inside) continue;
    out.push_back(line);
    if (line.rfind("legend:", 0) == 0) break;
  }
  return out;
}

std::string shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

}  // namespace

TEST_CASE("explain gemm --html: one frame per simulated cycle, no console message", "[explain][html]") {
  struct Case {
    const char* name;
    const char* explain;
    const char* run;
  };
  const Case cases[] = {
      {"gemm-ws", "--m 6 --k 4 --n 4", "--arch teach-4x4"},
      {"gemm-os", "--m 6 --k 4 --n 4 --dataflow os", "--arch teach-4x4 --set mxu.dataflow=os"},
      {"gemm-is-edge", "--m 5 --k 6 --n 3 --dataflow is --set mxu.cols=3",
       "--arch teach-4x4 --set mxu.dataflow=is --set mxu.cols=3"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const int64_t cycles = cycles_of_program(c.explain, c.run);
      const std::string dir = make_temp_dir("explain-html");
      const std::string page_path = dir + "/" + c.name + ".html";
      auto r = run_tpusim(std::string("explain gemm ") + c.explain + " --html " + page_path);
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      const std::string html = read_text_file(page_path);
      CHECK(count_of(html, "{\"bank\":") == static_cast<size_t>(cycles));  // one frame object per cycle
      CHECK(count_of(html, "http://") + count_of(html, "https://") + count_of(html, " src=") == 0);
      const std::string screenshot = build_dir() + "/explain-screenshots/" + c.name + ".png";
      const int64_t mid = cycles / 2;
      BrowserPage page = open_in_browser(page_path + "#cycle=" + std::to_string(mid), screenshot);
      INFO(page.log);
      REQUIRE(page.opened);
      for (const std::string& line : page.console) FAIL_CHECK("console: " << line);
      CHECK(page.dom.find("data-frames=\"" + std::to_string(cycles) + "\"") != std::string::npos);
      CHECK(page.dom.find("data-cycle=\"" + std::to_string(mid) + "\"") != std::string::npos);
      CHECK(count_of(page.dom, "<td class=\"pe") == 16 - (std::string(c.name) == "gemm-is-edge" ? 4 : 0));
      CHECK(std::filesystem::exists(screenshot));
    }
  }
}

TEST_CASE("explain gemm prints one frame per cycle, as the run has them", "[explain]") {
  const int64_t cycles = cycles_of_program("--m 5 --k 3 --n 4", "--arch teach-4x4");
  auto r = run_tpusim("explain gemm --m 5 --k 3 --n 4 --cycles 0:");
  REQUIRE(r.exit_code == 0);
  CHECK(count_of(r.out, "\ncycle ") == static_cast<size_t>(cycles));
  CHECK(r.out.find("C equals A . B") != std::string::npos);
  // Same inputs, same output, byte for byte.
  CHECK(run_tpusim("explain gemm --m 5 --k 3 --n 4 --cycles 0:").out == r.out);
}

TEST_CASE("explain gemm in a terminal: each Enter advances exactly one cycle", "[explain][tmux]") {
  const std::string session = "tpusim-explain-" + std::to_string(getpid());
  const std::string tmux = "tmux -L " + session + " ";
  // A wide window so that no line wraps; the command stays on screen after it ends.
  shell(tmux + "new-session -d -s main -x 260 -y 80 \"cd '" + source_dir() + "' && '" TPUSIM_BINARY
               "' explain gemm --m 6 --k 4 --n 4 --arch teach-4x4; sleep 60\"");
  auto capture = [&] { return shell(tmux + "capture-pane -p -t main"); };
  auto wait_for = [&](const std::string& needle) {
    std::string screen;
    for (int i = 0; i < 200; ++i) {
      screen = capture();
      if (screen.find(needle) != std::string::npos) return screen;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL("the terminal never showed '" << needle << "':\n" << screen);
    return screen;
  };
  auto cycle_on_screen = [](const std::string& screen) {
    std::smatch m;
    REQUIRE(std::regex_search(screen, m, std::regex("cycle (\\d+) of (\\d+)")));
    return std::stoll(m[1]);
  };
  wait_for("[Enter] start");
  shell(tmux + "send-keys -t main Enter");
  const int64_t first = cycle_on_screen(wait_for("[Enter] next cycle"));
  for (int i = 0; i < 3; ++i) shell(tmux + "send-keys -t main Enter");
  const std::string target = "cycle " + std::to_string(first + 3) + " of";
  std::string screen = wait_for(target);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // no further cycle follows
  screen = capture();
  CHECK(cycle_on_screen(screen) == first + 3);
  shell(tmux + "send-keys -t main q Enter");
  shell(tmux + "kill-server");
  // The screen is the frame of that cycle as printed without a terminal.
  auto printed = run_tpusim("explain gemm --m 6 --k 4 --n 4 --arch teach-4x4 --cycles " + std::to_string(first + 3) +
                            ":" + std::to_string(first + 3));
  REQUIRE(printed.exit_code == 0);
  const auto expected = frame_lines(printed.out, first + 3);
  REQUIRE(expected.size() > 20);
  CHECK(frame_lines(screen, first + 3) == expected);
}

TEST_CASE("explain conv: the im2col matrix reads the input elements the convolution does", "[explain]") {
  auto r = run_tpusim("explain conv --no-animation");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // Output pixel (0, 0) of a 3x3 conv with padding 1 over 2 channels: the top kernel row and
  // the left column fall in the padding; k = (kh, kw, c), c innermost.
  CHECK(r.out.find("     m 0   pad   pad   pad   pad   pad   pad   pad   pad 0,0,0 1,0,0 0,0,1 1,0,1   pad   pad 0,1,0 "
                   "1,1,0 0,1,1 1,1,1 \n") != std::string::npos);
  CHECK(r.out.find("M = output pixels = 25") != std::string::npos);
  CHECK(r.out.find("K = in_channels/groups x kernel points = 2 x 9 = 18") != std::string::npos);
  CHECK(r.out.find("each element is read 9.00 times") != std::string::npos);
  // K = 18 on 4 rows: ceil(18 / 4) = 5 boxes of consecutive k, 3 or 4 each.
  CHECK(r.out.find("5 K tiles x 1 N tile x 1 M tile") != std::string::npos);
  CHECK(r.out.find("  K tile     0     0     0     1     1     1     1     2     2     2     3     3     3     3     4     4     4     4 \n") !=
        std::string::npos);
  // Each mode compiled and run: materialize reads the im2col matrix back, buffer reads the input once.
  std::smatch buffer, materialize;
  REQUIRE(std::regex_search(r.out, buffer, std::regex("  buffer +\\d+ +(\\d+)")));
  REQUIRE(std::regex_search(r.out, materialize, std::regex("  materialize +\\d+ +(\\d+)")));
  CHECK(std::stoll(buffer[1]) < std::stoll(materialize[1]));
  CHECK(r.out.find("tile 0: 3 x 3 weights") != std::string::npos);
  CHECK(r.out.find("tile 1: 4 x 3 weights") != std::string::npos);

  // 1-D, causal padding and dilation 2: output w reads inputs w - 4, w - 2, w.
  auto d = run_tpusim("explain conv --size 12 --kernel 3 --padding causal --dilation 2 --in-channels 1 --out-channels 2 "
                      "--no-animation");
  REQUIRE(d.exit_code == 0);
  CHECK(d.out.find("     m 2  pad  0,0  0,2 \n") != std::string::npos);
  CHECK(d.out.find("     m 7  0,3  0,5  0,7 \n") != std::string::npos);
}

TEST_CASE("explain conv animates a tile of the compiled program, one frame per cycle", "[explain]") {
  auto r = run_tpusim("explain conv --tile 1 --cycles 0:5");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(count_of(r.out, "\ncycle ") == 6);
  const std::string dir = make_temp_dir("explain-conv");
  auto h = run_tpusim("explain conv --tile 0 --html " + dir + "/conv.html");
  REQUIRE(h.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(h.out, m, std::regex("\\((\\d+) frames")));
  CHECK(count_of(read_text_file(dir + "/conv.html"), "{\"bank\":") == std::stoull(m[1]));
  BrowserPage page = open_in_browser(dir + "/conv.html", build_dir() + "/explain-screenshots/conv-tile0.png");
  REQUIRE(page.opened);
  for (const std::string& line : page.console) FAIL_CHECK("console: " << line);
}

TEST_CASE("explain attention: score tiles by class, the flash order, both lowerings", "[explain]") {
  auto r = run_tpusim("explain attention --seq 16 --causal");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("  queries    0..3    p . . . \n") != std::string::npos);
  CHECK(r.out.find("  queries   12..15   F F F p \n") != std::string::npos);
  CHECK(r.out.find("per head: 6 full, 4 partial, 6 empty of 16 tiles") != std::string::npos);
  CHECK(r.out.find("  queries   12..15     7   8   9  10\n") != std::string::npos);
  CHECK(r.out.find("visit 4: key tile 3 (keys 12..15, partial)") != std::string::npos);
  CHECK(std::regex_search(r.out, std::regex("\n  flash +\\d+")));
  CHECK(std::regex_search(r.out, std::regex("\n  materialized +\\d+")));
  // Without a mask every tile is full and none is skipped.
  auto full = run_tpusim("explain attention --seq 16");
  REQUIRE(full.exit_code == 0);
  CHECK(full.out.find("per head: 16 full, 0 partial, 0 empty of 16 tiles") != std::string::npos);
}

TEST_CASE("explain layer: one layer of a real model, its fit and what bounds it", "[explain]") {
  auto r = run_tpusim("explain layer examples/models/resnet18.yaml --layer conv1 --no-animation");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Its GEMM: M = 12544 (output pixels or rows), K = 147 (the reduction), N = 64") != std::string::npos);
  // All of K = 7x7 taps x 3 channels in one box, across the kernel's rows.
  CHECK(r.out.find("a weight tile fills 147 of 256 rows and 64 of 256 columns") != std::string::npos);
  CHECK(r.out.find("rows: the whole reduction K = 147 fills 147 of 256 rows") != std::string::npos);
  CHECK(r.out.find("Diagnosis: vector-unit-bound") != std::string::npos);
  auto a = run_tpusim("explain layer examples/models/resnet18.yaml --layer conv1 --cycles 30:32");
  REQUIRE(a.exit_code == 0);
  CHECK(count_of(a.out, "\ncycle ") == 3);
  auto bad = run_tpusim("explain layer examples/models/resnet18.yaml --layer conv9");
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("--layer conv9: no such layer in the model (did you mean 'conv1'?)") != std::string::npos);
}
