#include "simulator/report_model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace tpusim {

std::string_view bound_name(Bound b) {
  switch (b) {
    case Bound::Compute: return "compute";
    case Bound::PoorlyMapped: return "poorly-mapped";
    case Bound::WeightLoad: return "weight-load";
    case Bound::DramWeights: return "dram-weights";
    case Bound::DramActivations: return "dram-activations";
    case Bound::DmaLatency: return "dma-latency";
    case Bound::VectorUnit: return "vector-unit";
    case Bound::Waiting: return "waiting";
    case Bound::Empty: return "empty";
  }
  return "?";
}

void derive_figures(const ArchConfig& arch, int64_t cycles, Figures& f) {
  const double pes = static_cast<double>(arch.mxu.rows * arch.mxu.cols);
  f.mxu_busy = f.unit_cycles[static_cast<int>(Unit::Mxu)][static_cast<int>(CycleCause::Busy)];
  f.dram_bytes = f.traffic.dram_read + f.traffic.dram_written;
  const double useful = static_cast<double>(f.useful_macs);
  f.utilization = f.ops_per_cycle = 0;
  if (cycles > 0) {
    f.utilization = useful / (pes * static_cast<double>(cycles));
    f.ops_per_cycle = 2 * useful / static_cast<double>(cycles);
  }
  f.mapping_efficiency = f.mapped_macs > 0 ? useful / static_cast<double>(f.mapped_macs) : 0;
  f.compute_utilization = f.mxu_busy > 0 ? useful / (pes * static_cast<double>(f.mxu_busy)) : 0;
  f.tops = f.ops_per_cycle * arch.mxu.clock_mhz * 1e6 / 1e12;
  f.ops_per_dram_byte = f.dram_bytes > 0 ? 2 * useful / static_cast<double>(f.dram_bytes) : 0;
}

namespace {

Figures counted_figures(const LabelStats& s, const std::vector<bool>& weight_tensors) {
  Figures f;
  f.first_cycle = s.first_cycle;
  f.last_cycle = s.last_cycle;
  f.span = s.first_cycle < 0 ? 0 : s.last_cycle - s.first_cycle + 1;
  f.instructions = s.instructions;
  f.unit_cycles = s.cycles;
  f.mxu_activity = s.mxu_activity;
  f.useful_macs = s.useful_macs;
  f.mapped_macs = s.mapped_macs;
  f.traffic = s.traffic;
  for (size_t t = 0; t < s.dram_by_tensor.size(); ++t) {
    const bool weight = t < weight_tensors.size() && weight_tensors[t];
    (weight ? f.dram_weight_bytes : f.dram_activation_read) += s.dram_by_tensor[t][0];
    f.dram_activation_written += s.dram_by_tensor[t][1];
  }
  return f;
}

int64_t busy(const Figures& f, Unit u) { return f.unit_cycles[static_cast<int>(u)][static_cast<int>(CycleCause::Busy)]; }
int64_t waiting(const Figures& f, Unit u, CycleCause c) { return f.unit_cycles[static_cast<int>(u)][static_cast<int>(c)]; }

double share(int64_t part, int64_t whole) { return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0; }
std::string pct(double x) { return fmt::format("{:.0f}%", 100 * x); }

// The largest way a unit spends its cycles other than working or being done.
std::string largest_wait(const Figures& f, Unit u) {
  CycleCause worst = CycleCause::WaitingOnDma;
  for (CycleCause c : {CycleCause::WaitingOnDma, CycleCause::WaitingOnTokens, CycleCause::WaitingOnWeights,
                       CycleCause::BankConflict}) {
    if (waiting(f, u, c) > waiting(f, u, worst)) worst = c;
  }
  switch (worst) {
    case CycleCause::WaitingOnDma: return "waiting on the DMA";
    case CycleCause::WaitingOnTokens: return "waiting on another unit's results";
    case CycleCause::WaitingOnWeights: return "waiting on weights";
    default: return "losing buffer ports to other units";
  }
}

// `span` is the figure the shares are of: the layer's own span (its units may overlap the
// next layer's, so its share of the run would understate how busy they were).
Diagnosis diagnose(const ArchConfig& arch, const LayerInfo* info, const Figures& f) {
  Diagnosis d;
  const int64_t span = f.span;
  if (span <= 0) return d;
  const int64_t mxu = busy(f, Unit::Mxu), vpu = busy(f, Unit::Vpu), dma = busy(f, Unit::Dma);
  const double mxu_share = share(mxu, span), vpu_share = share(vpu, span), dma_share = share(dma, span);
  const int64_t computing = f.mxu_activity[static_cast<int>(MxuActivity::Computing)];
  const int64_t shifting = f.mxu_activity[static_cast<int>(MxuActivity::ShiftingWeights)];
  const int64_t weight_wait = waiting(f, Unit::Mxu, CycleCause::WaitingOnWeights);
  const std::string units = fmt::format("MXU {}, VPU {}, DMA {} of {} cycles", pct(mxu_share), pct(vpu_share),
                                        pct(dma_share), span);
  const double top = std::max({mxu_share, vpu_share, dma_share});

  if (mxu > 0 && mxu_share >= vpu_share && mxu_share >= dma_share && mxu_share >= 0.5) {
    if (shifting > computing) {
      d.bound = Bound::WeightLoad;
      d.text = fmt::format("weight-load-bound: the array shifts weights in for {} cycles against {} computing; more "
                           "rows per weight tile (a larger batch) would amortize each load ({})",
                           shifting, computing, units);
    } else if (f.mapping_efficiency < 0.5 && f.mapped_macs > 0) {
      d.bound = Bound::PoorlyMapped;
      std::string fit;
      if (info && info->rows_used > 0) {
        fit = fmt::format(": K = {} fills {} of {} rows, N = {} fills {} of {} columns", info->gemm_k, info->rows_used,
                          arch.mxu.rows, info->gemm_n, info->cols_used, arch.mxu.cols);
      }
      d.text = fmt::format("poorly mapped: {} of PEs idle while the array computes{}; a smaller array, or packing more "
                           "of the reduction into rows, would help ({})",
                           pct(1 - f.mapping_efficiency), fit, units);
    } else {
      d.bound = Bound::Compute;
      d.text = fmt::format("compute-bound: the MXU is busy {} of the span at {} mapping efficiency; a larger array or "
                           "fewer MACs would help",
                           pct(mxu_share), pct(f.mapping_efficiency));
    }
    return d;
  }
  if (dma_share >= 0.5 && dma_share >= vpu_share) {
    const int64_t activations = f.dram_activation_read + f.dram_activation_written;
    const double bytes_per_cycle = arch.dram.bytes_per_cycle;
    const double transfer_cycles = static_cast<double>(f.dram_bytes) / bytes_per_cycle;
    if (transfer_cycles < 0.5 * static_cast<double>(dma)) {
      d.bound = Bound::DmaLatency;
      d.text = fmt::format("DMA-latency-bound: the DMA is busy {} of the span, but its {} of DRAM traffic needs only "
                           "{:.0f} cycles at {:.3g} bytes/cycle; the rest is {} cycles of latency per transfer with {} "
                           "in flight (dram.channels); larger transfers or more channels would help",
                           pct(dma_share), format_byte_size(f.dram_bytes), transfer_cycles, bytes_per_cycle,
                           arch.dram.latency_cycles, arch.dram.channels);
    } else if (f.dram_weight_bytes >= activations) {
      d.bound = Bound::DramWeights;
      std::string help = "reusing each weight for more rows (a larger batch) would hide them";
      const double load_cycles = static_cast<double>(f.dram_weight_bytes) / bytes_per_cycle;
      if (computing > 0 && load_cycles > static_cast<double>(computing)) {
        help = fmt::format("a batch of {} or more would reuse each weight enough to hide them behind compute",
                           static_cast<int64_t>(std::ceil(load_cycles / static_cast<double>(computing))));
      }
      d.text = fmt::format("DRAM-bound on weights: {} of weights (and {} of activations) at {:.3g} bytes/cycle keep the "
                           "DMA busy {} of the span; {}",
                           format_byte_size(f.dram_weight_bytes), format_byte_size(activations), bytes_per_cycle,
                           pct(dma_share), help);
    } else {
      d.bound = Bound::DramActivations;
      d.text = fmt::format("DRAM-bound on activations: {} read and {} written (and {} of weights) at {:.3g} "
                           "bytes/cycle keep the DMA busy {} of the span; keeping them in the unified buffer "
                           "(room for {} more) would hide them",
                           format_byte_size(f.dram_activation_read), format_byte_size(f.dram_activation_written),
                           format_byte_size(f.dram_weight_bytes), bytes_per_cycle, pct(dma_share),
                           format_byte_size(activations));
    }
    return d;
  }
  if (vpu_share >= 0.5) {
    d.bound = Bound::VectorUnit;
    d.text = fmt::format("vector-unit-bound: the VPU is busy {} of the span{}; more lanes (vpu.lanes, {} now) "
                         "would help ({})",
                         pct(vpu_share), info && !info->op_kind.empty() ? " on " + info->op_kind : "", arch.vpu.lanes,
                         units);
    return d;
  }
  // A unit's waits may begin before the layer's first instruction issues: count those within
  // the span at most.
  const int64_t weight_wait_in_span = std::min(weight_wait, span);
  if (share(weight_wait_in_span, span) >= 0.5) {
    d.bound = Bound::WeightLoad;
    d.text = fmt::format("weight-load-bound: the MXU waits {} cycles ({} of the span) for weights to arrive or shift "
                         "in; they come late from DRAM (a larger weight buffer would prefetch them) or each tile is "
                         "used for few rows (a larger batch would amortize it) ({})",
                         weight_wait, pct(share(weight_wait_in_span, span)), units);
    return d;
  }
  // No unit does most of the work: find the one that was busiest and say what it waited for.
  const Unit lead = top == mxu_share && mxu > 0 ? Unit::Mxu : top == vpu_share ? Unit::Vpu : Unit::Dma;
  d.bound = Bound::Waiting;
  d.text = fmt::format("waiting: no unit is busy half the span ({}); the {} spends most of the rest {}, so the units "
                       "wait on each other (latency, not throughput, sets the time)",
                       units, unit_name(lead) == "mxu" ? "MXU" : unit_name(lead) == "vpu" ? "VPU" : "DMA",
                       largest_wait(f, lead));
  return d;
}

}  // namespace

RunReport build_report(const std::string& program_name, const ArchConfig& arch, const SimulationResult& result,
                       Fidelity fidelity, const ReportContext& context) {
  RunReport r;
  r.program = program_name;
  r.arch = arch;
  r.fidelity = fidelity == Fidelity::Pe ? "pe" : "fast";
  r.peak_ops_per_cycle = 2.0 * static_cast<double>(arch.mxu.rows * arch.mxu.cols);
  r.graph_macs = context.graph_macs;
  r.counters = result.counters.all();
  r.activity = result.activity;

  r.totals = counted_figures(result.totals, context.weight_tensors);
  r.totals.cycles = r.totals.span = result.total_cycles;
  r.totals.first_cycle = 0;
  r.totals.last_cycle = result.total_cycles - 1;
  derive_figures(arch, result.total_cycles, r.totals);
  r.diagnosis = diagnose(arch, nullptr, r.totals);

  // Labels with instructions, in the order they started (ties: first seen).
  std::vector<size_t> order;
  for (size_t i = 0; i < result.labels.size(); ++i) {
    if (result.per_label[i].instructions > 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return result.per_label[a].first_cycle < result.per_label[b].first_cycle;
  });
  for (size_t n = 0; n < order.size(); ++n) {
    const size_t i = order[n];
    LayerReport layer;
    layer.info.label = result.labels[i].empty() ? "(unlabelled)" : result.labels[i];
    for (const LayerInfo& known : context.layers) {
      if (known.label == result.labels[i]) layer.info = known;
    }
    layer.figures = counted_figures(result.per_label[i], context.weight_tensors);
    // The run split at each layer's start: the cycles before the first start go to the first
    // layer, the last layer runs to the end. These add up to the total.
    const int64_t begin = n == 0 ? 0 : result.per_label[i].first_cycle;
    const int64_t end = n + 1 < order.size() ? result.per_label[order[n + 1]].first_cycle : result.total_cycles;
    layer.figures.cycles = end - begin;
    derive_figures(arch, layer.figures.span, layer.figures);
    layer.diagnosis = diagnose(arch, &layer.info, layer.figures);
    r.layers.push_back(std::move(layer));
  }
  return r;
}

std::vector<size_t> layer_order(const RunReport& report, const std::string& sort) {
  std::vector<size_t> order(report.layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (sort == "cycles") {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return report.layers[a].figures.cycles > report.layers[b].figures.cycles;
    });
  }
  return order;
}

}  // namespace tpusim
