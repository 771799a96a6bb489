// The report model: layer cycles that add up, and a diagnosis for each kind of bound, from
// counters made by hand so each rule is tested where it flips.
#include <catch2/catch.hpp>

#include "simulator/report.h"
#include "simulator/report_model.h"

using namespace tpusim;

namespace {

ArchConfig machine() {
  ArchConfig arch = load_arch("edge-32x32");  // 32x32, 8 bytes/cycle of DRAM
  return arch;
}

constexpr int kMxu = static_cast<int>(Unit::Mxu), kVpu = static_cast<int>(Unit::Vpu), kDma = static_cast<int>(Unit::Dma);
constexpr int kBusy = static_cast<int>(CycleCause::Busy), kIdle = static_cast<int>(CycleCause::Idle);
constexpr int kWeights = static_cast<int>(CycleCause::WaitingOnWeights);

// One label over [first, first + span): `busy` cycles per unit, the rest idle.
LabelStats stats(int64_t first, int64_t span, int64_t mxu, int64_t vpu, int64_t dma) {
  LabelStats s;
  s.first_cycle = first;
  s.last_cycle = first + span - 1;
  s.instructions = 1;
  s.cycles[kMxu][kBusy] = mxu;
  s.cycles[kVpu][kBusy] = vpu;
  s.cycles[kDma][kBusy] = dma;
  for (int u : {kMxu, kVpu, kDma}) s.cycles[u][kIdle] = span - s.cycles[u][kBusy];
  return s;
}

RunReport report_of(const std::vector<LabelStats>& labels, const ReportContext& context = {}) {
  SimulationResult result;
  for (size_t i = 0; i < labels.size(); ++i) {
    result.labels.push_back("l" + std::to_string(i));
    result.per_label.push_back(labels[i]);
    result.total_cycles = std::max(result.total_cycles, labels[i].last_cycle + 1);
  }
  return build_report("test", machine(), result, Fidelity::Fast, context);
}

Diagnosis diagnosis_of(const LabelStats& s, const ReportContext& context = {}) {
  return report_of({s}, context).layers.at(0).diagnosis;
}

}  // namespace

TEST_CASE("report: layer cycles split the run where each layer starts and add up to the total", "[report]") {
  // Overlapping layers: l1 starts before l0 ends; l2 starts late and runs to the end.
  RunReport r = report_of({stats(5, 100, 50, 0, 0), stats(80, 100, 50, 0, 0), stats(300, 50, 0, 10, 0)});
  REQUIRE(r.layers.size() == 3);
  CHECK(r.layers[0].figures.cycles == 80);  // [0, 80): the cycles before the first start too
  CHECK(r.layers[1].figures.cycles == 220);
  CHECK(r.layers[2].figures.cycles == 50);
  CHECK(r.layers[0].figures.cycles + r.layers[1].figures.cycles + r.layers[2].figures.cycles == r.totals.cycles);
  CHECK(r.layers[0].figures.span == 100);
  CHECK(layer_order(r, "cycles") == std::vector<size_t>{1, 0, 2});
  CHECK(layer_order(r, "start") == std::vector<size_t>{0, 1, 2});
}

TEST_CASE("report: the diagnosis names the bound", "[report]") {
  SECTION("compute-bound: the MXU busy most of the span, tiles full") {
    LabelStats s = stats(0, 1000, 900, 100, 100);
    s.mxu_activity[static_cast<int>(MxuActivity::Computing)] = 800;
    s.useful_macs = s.mapped_macs = 1000;
    Diagnosis d = diagnosis_of(s);
    CHECK(d.bound == Bound::Compute);
    CHECK(d.text.starts_with("compute-bound: the MXU is busy 90% of the span at 100% mapping efficiency"));
  }
  SECTION("poorly mapped: the MXU busy, most PEs padding, with the fit the compiler chose") {
    LabelStats s = stats(0, 1000, 900, 0, 100);
    s.mxu_activity[static_cast<int>(MxuActivity::Computing)] = 800;
    s.useful_macs = 38;
    s.mapped_macs = 100;
    ReportContext context;
    LayerInfo info;
    info.label = "l0";
    info.gemm_k = 147;
    info.gemm_n = 64;
    info.rows_used = 21;
    info.cols_used = 32;
    context.layers.push_back(info);
    Diagnosis d = diagnosis_of(s, context);
    CHECK(d.bound == Bound::PoorlyMapped);
    CHECK(d.text.starts_with("poorly mapped: 62% of PEs idle while the array computes: K = 147 fills 21 of 32 rows, "
                             "N = 64 fills 32 of 32 columns"));
    // At half the PEs used it is no longer poorly mapped.
    s.useful_macs = 50;
    CHECK(diagnosis_of(s, context).bound == Bound::Compute);
  }
  SECTION("weight-load-bound: the array shifts weights more than it computes") {
    LabelStats s = stats(0, 1000, 900, 0, 100);
    s.mxu_activity[static_cast<int>(MxuActivity::Computing)] = 300;
    s.mxu_activity[static_cast<int>(MxuActivity::ShiftingWeights)] = 301;
    CHECK(diagnosis_of(s).bound == Bound::WeightLoad);
    s.mxu_activity[static_cast<int>(MxuActivity::ShiftingWeights)] = 300;
    CHECK(diagnosis_of(s).bound != Bound::WeightLoad);
  }
  SECTION("weight-load-bound: the MXU waits for weights most of the span") {
    LabelStats s = stats(0, 1000, 100, 0, 400);
    s.cycles[kMxu][kWeights] = 600;  // more than half; waits before the span count only within it
    s.cycles[kMxu][kIdle] = 300;
    CHECK(diagnosis_of(s).bound == Bound::WeightLoad);
    s.cycles[kMxu][kWeights] = 499;
    CHECK(diagnosis_of(s).bound == Bound::Waiting);
  }
  SECTION("DRAM-bound on weights or activations, by what the bytes were") {
    LabelStats s = stats(0, 1000, 100, 0, 900);
    s.mxu_activity[static_cast<int>(MxuActivity::Computing)] = 100;
    s.traffic.dram_read = 7200;  // 900 cycles at 8 bytes/cycle
    s.dram_by_tensor = {{6000, 0}, {1200, 0}};
    ReportContext context;
    context.weight_tensors = {true, false};
    Diagnosis d = diagnosis_of(s, context);
    CHECK(d.bound == Bound::DramWeights);
    // 6000 bytes take 750 cycles against 100 computing: a batch of 8 hides them.
    CHECK(d.text.find("a batch of 8 or more") != std::string::npos);
    context.weight_tensors = {false, true};
    CHECK(diagnosis_of(s, context).bound == Bound::DramActivations);
  }
  SECTION("DMA-latency-bound: the DMA busy, its bytes few for the time") {
    LabelStats s = stats(0, 1000, 100, 0, 900);
    s.traffic.dram_read = 3599;  // under half of 900 cycles at 8 bytes/cycle
    s.dram_by_tensor = {{3599, 0}};
    Diagnosis d = diagnosis_of(s);
    CHECK(d.bound == Bound::DmaLatency);
    s.traffic.dram_read = 3600;
    s.dram_by_tensor = {{3600, 0}};
    CHECK(diagnosis_of(s).bound == Bound::DramActivations);
  }
  SECTION("vector-unit-bound") {
    CHECK(diagnosis_of(stats(0, 1000, 0, 500, 400)).bound == Bound::VectorUnit);
    CHECK(diagnosis_of(stats(0, 1000, 0, 499, 400)).bound == Bound::Waiting);
  }
  SECTION("waiting: no unit busy half the span") {
    LabelStats s = stats(0, 1000, 300, 200, 400);
    s.cycles[kMxu][static_cast<int>(CycleCause::WaitingOnTokens)] = 600;
    s.cycles[kMxu][kIdle] = 100;
    Diagnosis d = diagnosis_of(s);
    CHECK(d.bound == Bound::Waiting);
    CHECK(d.text.find("the DMA spends most of the rest") != std::string::npos);
  }
}

TEST_CASE("report: SCALE-Sim's CSV files have its exact header lines", "[report][csv]") {
  RunReport r = report_of({stats(0, 100, 50, 0, 20)});
  auto files = report_csv_files(r);
  REQUIRE(files.size() == 4);
  auto header = [&](size_t i) { return files[i].second.substr(0, files[i].second.find('\n') + 1); };
  CHECK(files[0].first == "COMPUTE_REPORT.csv");
  CHECK(header(0) == "LayerID, Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,\n");
  CHECK(files[1].first == "BANDWIDTH_REPORT.csv");
  CHECK(header(1) == "LayerID, Avg IFMAP SRAM BW, Avg FILTER SRAM BW, Avg OFMAP SRAM BW, Avg IFMAP DRAM BW, "
                     "Avg FILTER DRAM BW, Avg OFMAP DRAM BW,\n");
  CHECK(files[2].first == "DETAILED_ACCESS_REPORT.csv");
  CHECK(header(2) ==
        "LayerID, SRAM IFMAP Start Cycle, SRAM IFMAP Stop Cycle, SRAM IFMAP Reads, SRAM Filter Start Cycle, SRAM "
        "Filter Stop Cycle, SRAM Filter Reads, SRAM OFMAP Start Cycle, SRAM OFMAP Stop Cycle, SRAM OFMAP Writes, DRAM "
        "IFMAP Start Cycle, DRAM IFMAP Stop Cycle, DRAM IFMAP Reads, DRAM Filter Start Cycle, DRAM Filter Stop Cycle, "
        "DRAM Filter Reads, DRAM OFMAP Start Cycle, DRAM OFMAP Stop Cycle, DRAM OFMAP Writes,\n");
  // A row per layer in SCALE-Sim's form: the span, the cycles the MXU was not busy, percents.
  CHECK(files[0].second.substr(header(0).size()) == "0, 100, 50, 0.0000, 0.0000, 0.0000,\n");
  CHECK(files[3].first == "layers.csv");
}
