// `tpusim run PROGRAM.tpu --arch A`: verify and simulate a program, print its report.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/interpreter.h"
#include "simulator/npy.h"
#include "simulator/report.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"
#include "simulator/trace.h"
#include "tools/commands.h"

namespace tpusim::cli {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error({path, 0, 0, ""}, "cannot write file (check that the directory exists)");
}

struct RunOptions {
  std::string program;
  std::string arch;
  std::vector<std::string> overrides;
  std::string inputs, outputs, json, trace;
  std::string fidelity = "fast";
  uint64_t seed = 1;
  bool check = false;
  bool no_race_check = false;
  bool quiet = false;
};

void run(const RunOptions& o) {
  ArchConfig arch = load_arch(o.arch, o.overrides);
  Program program = load_program(o.program);
  TargetLimits target = target_limits(arch);
  verify_program_or_throw(program, target);

  MachineState state = make_machine_state(program, target);
  load_program_inputs(program, o.inputs, o.seed, state);
  MachineState reference_state = o.check ? state : MachineState{};

  SimulationOptions options;
  options.fidelity = o.fidelity == "pe" ? Fidelity::Pe : Fidelity::Fast;
  options.check_races = !o.no_race_check;
  options.record_trace = !o.trace.empty();
  SimulationResult result = simulate_program(program, arch, state, options);

  std::string name = std::filesystem::path(o.program).filename().string();
  if (!o.quiet) std::cout << report_text(name, arch, result, options.fidelity);
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
  if (!o.json.empty()) write_file(o.json, report_json(name, arch, result, options.fidelity));
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
  auto* cmd = app.add_subcommand("run", "Verify and simulate a program (*.tpu), print its report");
  cmd->add_option("program", options->program, "Program file (*.tpu)")->required();
  cmd->add_option("--arch", options->arch, "Target: preset name or YAML file")->required();
  cmd->add_option("--set", options->overrides, "Override an arch field, e.g. --set mxu.rows=64")->allow_extra_args(false);
  cmd->add_option("--inputs", options->inputs, "Directory with TENSOR.npy for input tensors (others are seeded random)");
  cmd->add_option("--outputs", options->outputs, "Directory to write output tensors to as TENSOR.npy");
  cmd->add_option("--seed", options->seed, "Seed for random inputs (default 1)");
  cmd->add_option("--fidelity", options->fidelity, "pe: step every PE register; fast: closed-form timing (default)")
      ->check(CLI::IsMember({"pe", "fast"}));
  cmd->add_flag("--check", options->check, "Also run the reference interpreter and compare every output byte");
  cmd->add_flag("--no-race-check", options->no_race_check, "Skip race detection (faster on huge programs)");
  cmd->add_option("--json", options->json, "Write the report as JSON to this file");
  cmd->add_option("--trace", options->trace, "Write a Perfetto/Chrome trace of every instruction to this file");
  cmd->add_flag("-q,--quiet", options->quiet, "Do not print the report");
  cmd->callback([options] { run(*options); });
}

}  // namespace tpusim::cli
