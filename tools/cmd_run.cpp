// `tpusim run PROGRAM.tpu --arch A`: verify and simulate a program, print its report.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ir/program.h"
#include "ir/sizes.h"
#include "simulator/arch.h"
#include "simulator/interpreter.h"
#include "simulator/npy.h"
#include "simulator/report.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"
#include "simulator/trace.h"
#include "compiler/model_run.h"
#include "compiler/report_context.h"
#include "tools/commands.h"
#include "tools/output_files.h"
#include "tools/progress.h"

namespace tpusim::cli {
namespace {

struct RunOptions {
  std::string program;
  std::string arch;
  std::vector<std::string> overrides;
  std::string inputs, outputs, json, trace;
  std::vector<std::string> reports;  // --report: table, json, csv
  std::string report_dir;            // -o
  std::string sort = "start";
  std::string fidelity = "fast";
  std::string seed = "1";
  bool check = false;
  bool no_race_check = false;
  bool quiet = false;
  CompilerFlags flags;
  LimitFlags limit_flags;
  // Checked from the flags before anything runs.
  uint64_t seed_value = 1;
  ResourceLimits limits;
};

SimulationOptions simulation_options(const RunOptions& o) {
  SimulationOptions options;
  options.fidelity = o.fidelity == "pe" ? Fidelity::Pe : Fidelity::Fast;
  options.check_races = !o.no_race_check;
  options.record_trace = !o.trace.empty();
  options.limits = o.limits;
  return options;
}

// The check's results (ModelCheck) as JSON.
nlohmann::ordered_json check_json(const ModelCheck& check) {
  auto comparison = [](const Comparison& c) {
    nlohmann::ordered_json j;
    j["ok"] = c.ok;
    j["bit_exact"] = c.bit_exact;
    j["elements"] = c.elements;
    j["mismatches"] = c.mismatches;
    j["worst_abs_error"] = c.worst_abs_error;
    // Infinite (an element outside a zero tolerance) has no JSON number: null.
    j["worst_ratio_to_bound"] = std::isfinite(c.worst_ratio) ? nlohmann::ordered_json(c.worst_ratio) : nullptr;
    j["worst_at"] = c.worst_where;
    return j;
  };
  nlohmann::ordered_json j;
  j["ok"] = check.ok;
  j["kernels"] = {{"checked", check.kernels_checked}, {"bit_exact", check.kernels_bit_exact}, {"failed", check.kernels_failed}};
  nlohmann::ordered_json kernels = nlohmann::ordered_json::array();
  for (const KernelCheck& k : check.kernels) {
    nlohmann::ordered_json one = comparison(k.comparison);
    one["kernel"] = k.kernel;
    one["ops"] = k.ops;
    kernels.push_back(one);
  }
  j["kernel_results"] = kernels;
  nlohmann::ordered_json outputs = nlohmann::ordered_json::array();
  for (const OutputCheck& o : check.outputs) {
    nlohmann::ordered_json one;
    one["name"] = o.name;
    one["type"] = std::string(dtype_name(o.type));
    one["ok"] = o.ok;
    if (is_float(o.type)) {
      one["relative_rms_error"] = std::isfinite(o.relative_rms_error) ? nlohmann::ordered_json(o.relative_rms_error) : nullptr;
      one["reference_relative_rms_error"] = o.reference_relative_rms_error;
      one["bf16_roundings"] = o.bf16_roundings;
      one["fp32_roundings"] = o.fp32_roundings;
      one["bound"] = o.bound;
    } else {
      one["bit_exact"] = o.reference.bit_exact;
      one["elements"] = o.reference.elements;
      one["mismatches"] = o.reference.mismatches;
    }
    outputs.push_back(one);
  }
  j["outputs"] = outputs;
  return j;
}

// The simulator's JSON report with what the compiler decided that the report's numbers
// depend on (for each attention op, its lowering and how many score tiles it computed), the
// MACs of depthwise convolutions run on the VPU (which the array's useful MACs leave out) next
// to the graph's, and with --check its results.
std::string model_report_json(const CompileResult& compiled, const std::string& report, const ModelCheck* check) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(report);
  nlohmann::ordered_json attention = nlohmann::ordered_json::array();
  int64_t vpu_macs = 0;
  for (const auto& kernel : compiled.kernels.kernels) {
    if (const auto* d = std::get_if<DepthwiseKernel>(&kernel)) {
      for (const Op& op : compiled.graph.ops) {
        if (op.name == d->name) vpu_macs += op_macs(compiled.graph, op);
      }
    }
    const auto* a = std::get_if<AttentionKernel>(&kernel);
    if (!a) continue;
    const AttentionTiling& t = a->tiling;
    nlohmann::ordered_json op;
    op["op"] = a->name;
    op["lowering"] = std::string(attention_lowering_name(a->lowering));
    op["batch"] = a->batch;
    op["heads"] = a->heads;
    op["kv_heads"] = a->kv_heads;
    op["score_tile"] = {t.q_block, t.k_block};
    op["score_tiles_per_head"] = {{"total", t.tiles()}, {"computed", t.full + t.partial}, {"full", t.full},
                                  {"partial", t.partial}, {"empty", t.empty}};
    if (a->lowering == AttentionLowering::Materialized) op["scores_on_chip"] = t.scores_on_chip;
    attention.push_back(op);
  }
  nlohmann::ordered_json with_vpu;
  for (auto& [key, value] : j.items()) {
    with_vpu[key] = value;
    if (key == "graph_macs") with_vpu["macs_on_vpu"] = vpu_macs;
  }
  j = std::move(with_vpu);
  if (!attention.empty()) j["attention"] = attention;
  if (check) j["check"] = check_json(*check);
  return j.dump(2) + "\n";
}

// The report in every form asked for: the table on stdout (unless -q) or in -o DIR, JSON in
// --json FILE, on stdout or in DIR, HTML on stdout or in DIR, the CSV files in DIR.
void write_reports(const RunOptions& o, const std::string& table, const std::string& json, const RunReport& report) {
  const bool to_dir = !o.report_dir.empty();
  std::vector<std::string> kinds = o.reports;
  if (kinds.empty() && !o.quiet) kinds.push_back("table");
  for (const std::string& kind : kinds) {
    if (kind == "table") {
      if (to_dir) write_file(o.report_dir + "/report.txt", table);
      else if (!o.quiet) std::cout << table;
    } else if (kind == "json") {
      if (to_dir) write_file(o.report_dir + "/report.json", json);
      else std::cout << json;
    } else if (kind == "html") {
      if (to_dir) write_file(o.report_dir + "/report.html", report_html(report));
      else std::cout << report_html(report);
    } else if (kind == "csv") {
      for (const auto& [file, text] : report_csv_files(report)) write_file(o.report_dir + "/" + file, text);
    }
  }
  if (!o.json.empty()) write_file(o.json, json);
}

// A model: compile it, simulate the program, check the outputs against the reference.
void run_model(const RunOptions& o) {
  ArchConfig arch = load_arch(o.arch, o.overrides);
  Progress progress(o.quiet);
  CompileOptions compile = compile_options(o.flags);
  compile.on_pass = [&](const std::string& pass) { progress.pass(pass); };
  compile.limits = o.limits;
  CompileResult compiled = compile_graph(load_model(o.program, o.limits), arch, compile);
  TargetLimits target = target_limits(arch);
  require_memory(model_run_bytes(compiled, target, o.check), o.limits, {o.program, 0, 0, ""},
                 o.check ? "the run and its check (the simulated machine, the model's data and the reference's tensors)"
                         : "the run (the simulated machine and the model's data)");
  MachineState state = make_machine_state(compiled.program, target, o.limits);
  auto given = place_model_inputs(compiled, o.inputs, o.seed_value, state);
  SimulationOptions options = simulation_options(o);
  options.progress = [&](const SimulationProgress& p) { progress.simulation(p); };
  SimulationResult result = simulate_program(compiled.program, arch, state, options);
  progress.clear();
  std::string name = std::filesystem::path(o.program).filename().string();
  const RunReport report = build_report(name, arch, result, options.fidelity, report_context(compiled, arch));
  std::string table = report_text(report, o.sort);
  table += compile_summary(compiled);
  table += fmt::format("\n  model MACs {} (graph), {} useful MACs simulated\n", graph_macs(compiled.graph),
                       result.totals.useful_macs);
  // The check runs before the reports are written: the JSON report holds its results.
  std::optional<ModelCheck> check;
  if (o.check) {
    progress.status("checking the outputs against the reference implementation");
    check = check_model_outputs(compiled, given, state);
    progress.clear();
  }
  write_reports(o, table, model_report_json(compiled, report_json(report), check ? &*check : nullptr), report);
  if (!o.trace.empty()) write_file(o.trace, trace_json(compiled.program, result));
  if (!o.outputs.empty()) {
    std::filesystem::create_directories(o.outputs);
    for (int v : compiled.graph.outputs) {
      const Value& value = compiled.graph.values[static_cast<size_t>(v)];
      int t = compiled.tensor_of_value[static_cast<size_t>(v)];
      write_npy(o.outputs + "/" + value.name + ".npy", HostTensor{value.dtype, value.shape, state.dram[static_cast<size_t>(t)]});
    }
  }
  if (check) {
    std::cout << "\n" << check->text;
    if (!check->ok) {
      throw Error({o.program, 0, 0, ""}, "check failed: the simulated outputs differ from the reference implementation "
                                         "beyond their bounds (see above); this is a bug in tpusim's compiler or simulator");
    }
  }
}

void run(RunOptions& o) {
  o.seed_value = parse_seed(o.seed);
  o.limits = resource_limits(o.limit_flags);
  if (!o.inputs.empty() && !std::filesystem::is_directory(o.inputs)) {
    throw Error({o.inputs, 0, 0, ""}, "--inputs: no such directory (give the directory that holds NAME.npy files)");
  }
  require_writable(o.json, "--json");
  if (std::count(o.reports.begin(), o.reports.end(), "csv") > 0 && o.report_dir.empty()) {
    throw Error({"--report", 0, 0, ""}, "csv writes four files (SCALE-Sim's three and layers.csv): give a directory with -o DIR");
  }
  if (!o.report_dir.empty()) {
    if (o.reports.empty()) {
      throw Error({"-o", 0, 0, ""}, "say which reports to write there with --report table|json|csv|html (repeatable)");
    }
    std::error_code error;
    std::filesystem::create_directories(o.report_dir, error);
    if (error || !std::filesystem::is_directory(o.report_dir)) {
      throw Error({o.report_dir, 0, 0, ""}, "-o: cannot create this directory");
    }
  }
  require_writable(o.trace, "--trace");
  if (!o.outputs.empty()) {
    std::error_code error;
    std::filesystem::create_directories(o.outputs, error);
    if (error || !std::filesystem::is_directory(o.outputs)) {
      throw Error({o.outputs, 0, 0, ""}, "--outputs: cannot create this directory");
    }
  }
  if (input_kind(o.program) != InputKind::Program) return run_model(o);
  ArchConfig arch = load_arch(o.arch, o.overrides);
  Program program = load_program(o.program);
  TargetLimits target = target_limits(arch);
  verify_program_or_throw(program, target);

  // The check keeps a second copy of the machine for the reference interpreter.
  const int64_t machine = machine_state_bytes(program, target);
  require_memory(o.check ? checked_mul(machine, 2).value_or(INT64_MAX) : machine, o.limits, {o.program, 0, 0, ""},
                 o.check ? "the run and its check (two copies of the simulated machine)" : "the simulated machine (its on-chip buffers and DRAM tensors)");
  MachineState state = make_machine_state(program, target, o.limits);
  load_program_inputs(program, o.inputs, o.seed_value, state);
  MachineState reference_state = o.check ? state : MachineState{};

  SimulationOptions options = simulation_options(o);
  Progress progress(o.quiet);
  options.progress = [&](const SimulationProgress& p) { progress.simulation(p); };
  SimulationResult result = simulate_program(program, arch, state, options);
  progress.clear();

  std::string name = std::filesystem::path(o.program).filename().string();
  const RunReport report = build_report(name, arch, result, options.fidelity);
  write_reports(o, report_text(report, o.sort), report_json(report), report);
  if (o.check) {
    interpret_program(program, target, reference_state);
    for (size_t t = 0; t < program.tensors.size(); ++t) {
      if (program.tensors[t].kind == TensorKind::Input) continue;
      if (state.dram[t] != reference_state.dram[t]) {
        throw Error({o.program, 0, 0, ""},
                    fmt::format("check failed: tensor '{}' differs from the reference interpreter "
                                "(this is a bug in tpusim's simulator)", program.tensors[t].name));
      }
    }
    std::cout << "\n  check: every output tensor is byte-identical to the reference interpreter's\n";
  }
  if (!o.trace.empty()) write_file(o.trace, trace_json(program, result));
  if (!o.outputs.empty()) {
    std::filesystem::create_directories(o.outputs);
    for (size_t t = 0; t < program.tensors.size(); ++t) {
      if (program.tensors[t].kind != TensorKind::Output) continue;
      write_npy(o.outputs + "/" + program.tensors[t].name + ".npy", tensor_from_state(program, static_cast<int>(t), state));
    }
  }
}

}  // namespace

void register_run_command(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Simulate a program (*.tpu) or compile and simulate a model (*.yaml, *.graph, *.csv); "
                                        "print the report");
  cmd->add_option("program", options->program, "Program (*.tpu) or model (*.yaml, *.graph, SCALE-Sim *.csv)")->required();
  cmd->add_option("--arch", options->arch, "Target: preset name or YAML file")->required();
  cmd->add_option("--set", options->overrides, "Override an arch field, e.g. --set mxu.rows=64")->allow_extra_args(false);
  cmd->add_option("--inputs", options->inputs, "Directory with TENSOR.npy for input tensors (others are seeded random)");
  cmd->add_option("--outputs", options->outputs, "Directory to write output tensors to as TENSOR.npy");
  cmd->add_option("--seed", options->seed, "Seed for random inputs (default 1)");
  cmd->add_option("--fidelity", options->fidelity, "pe: step every PE register; fast: closed-form timing (default)")
      ->check(CLI::IsMember({"pe", "fast"}));
  cmd->add_flag("--check", options->check,
                "Programs: also run the reference interpreter and compare every output byte. Models: compare the "
                "outputs with the reference implementation per kernel (int8 exact, floats within derived bounds) and end to end "
                "(floats against an fp64 evaluation)");
  cmd->add_flag("--no-race-check", options->no_race_check, "Skip race detection (faster on huge programs)");
  cmd->add_option("--json", options->json, "Write the report as JSON to this file");
  cmd->add_option("--report", options->reports,
                  "Report to produce (repeatable): table (default), json, csv (SCALE-Sim's files and layers.csv; needs "
                  "-o), html (one self-contained page)")
      ->check(CLI::IsMember({"table", "json", "csv", "html"}))
      ->allow_extra_args(false);
  cmd->add_option("-o,--output-dir", options->report_dir, "Write the --report files to this directory");
  cmd->add_option("--sort", options->sort, "Order of the per-layer rows: start (default) or cycles (slowest first)")
      ->check(CLI::IsMember({"start", "cycles"}));
  cmd->add_option("--trace", options->trace, "Write a Perfetto/Chrome trace of every instruction to this file");
  cmd->add_flag("-q,--quiet", options->quiet, "Do not print the report");
  add_compiler_flags(cmd, options->flags);
  add_limit_flags(cmd, options->limit_flags, true);
  cmd->callback([options] { run(*options); });
}

}  // namespace tpusim::cli
