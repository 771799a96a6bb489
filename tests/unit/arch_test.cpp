// The machine description: presets, overrides, derived defaults and the printed form.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include "ir/diagnostics.h"
#include "simulator/arch.h"
#include "test_util.h"

using namespace tpusim;

namespace {

const std::vector<std::string> kPresets = {"edge-32x32", "teach-4x4", "tpu-v1", "tpu-v4-like"};

// The smallest valid file: only the required keys.
const char* kMinimal = R"(mxu:
  rows: 8
  cols: 4
unified_buffer: { bytes: 1KiB }
weight_buffer: { bytes: 256 }
accumulator: { bytes: 1KiB }
dram: { bytes_per_cycle: 2.5 }
)";

}  // namespace

TEST_CASE("every preset loads and is listed", "[arch]") {
  CHECK(arch_preset_names() == kPresets);
  for (const auto& name : kPresets) {
    INFO(name);
    ArchConfig arch = load_arch(name);
    CHECK(arch.name == name);
    CHECK(arch.source == test::source_dir() + "/examples/arch/" + name + ".yaml");
  }
}

TEST_CASE("tpu-v1 has the numbers of the ISCA 2017 paper", "[arch]") {
  // Jouppi et al., ISCA 2017 (arXiv:1704.04760): 256x256 int8 MACs at 700 MHz, 24 MiB
  // unified buffer, 4 MiB of accumulators (4096 x 256 x int32), 34 GB/s weight memory.
  ArchConfig arch = load_arch("tpu-v1");
  CHECK(arch.mxu.rows == 256);
  CHECK(arch.mxu.cols == 256);
  CHECK(arch.mxu.dataflow == Dataflow::WeightStationary);
  CHECK(arch.mxu.operand_type == DType::Int8);
  CHECK(arch.mxu.clock_mhz == 700);
  CHECK(arch.mxu.weight_double_buffering);
  CHECK(arch.unified_buffer.bytes == 24 * 1024 * 1024);
  CHECK(arch.unified_buffer.bytes_per_cycle == 256);
  CHECK(arch.weight_buffer.bytes == 4 * 64 * 1024);
  CHECK(arch.accumulator.bytes == 4096 * 256 * 4);
  CHECK(arch.accumulator.bytes_per_cycle == 1024);
  CHECK(arch.vpu.lanes == 256);
  CHECK(arch.dram.bytes_per_cycle == Approx(34e9 / 700e6).epsilon(1e-6));
  CHECK(arch.dram.latency_cycles == 140);
  CHECK(arch.dram.channels == 1);
}

TEST_CASE("the other presets have their documented shapes", "[arch]") {
  ArchConfig v4 = load_arch("tpu-v4-like");
  CHECK(v4.mxu.rows == 128);
  CHECK(v4.mxu.operand_type == DType::BF16);
  CHECK(v4.mxu.clock_mhz == 1050);
  CHECK(v4.dram.bytes_per_cycle == Approx(1200e9 / 1050e6).epsilon(1e-6));
  CHECK(v4.dram.channels == 4);
  CHECK(v4.accumulator.bytes_per_cycle == 128 * 4);  // derived: one row of fp32

  ArchConfig edge = load_arch("edge-32x32");
  CHECK(edge.mxu.rows == 32);
  CHECK(edge.unified_buffer.bytes == 512 * 1024);
  CHECK(edge.dram.bytes_per_cycle == 8);

  ArchConfig teach = load_arch("teach-4x4");
  CHECK(teach.mxu.rows == 4);
  CHECK(teach.mxu.clock_mhz == 100);
  CHECK(teach.weight_buffer.bytes == 256);
  CHECK(teach.dram.latency_cycles == 10);
}

TEST_CASE("a file path loads as well as a preset name", "[arch]") {
  ArchConfig by_path = load_arch(test::source_dir() + "/examples/arch/teach-4x4.yaml");
  ArchConfig by_name = load_arch("teach-4x4");
  CHECK(by_path == by_name);
}

TEST_CASE("TPUSIM_ARCH_PATH is searched before the presets", "[arch]") {
  std::string dir = test::make_temp_dir("arch-path");
  test::write_text_file(dir + "/mine.yaml", kMinimal);
  test::write_text_file(dir + "/tpu-v1.yaml", std::string(kMinimal) + "name: shadow\n");
  ::setenv("TPUSIM_ARCH_PATH", dir.c_str(), 1);
  ArchConfig mine = load_arch("mine");
  ArchConfig shadow = load_arch("tpu-v1");
  ::unsetenv("TPUSIM_ARCH_PATH");
  CHECK(mine.name == "mine");
  CHECK(mine.source == dir + "/mine.yaml");
  CHECK(shadow.name == "shadow");
  CHECK(load_arch("tpu-v1").mxu.rows == 256);
  std::filesystem::remove_all(dir);
}

TEST_CASE("absent keys take the documented defaults and derived values", "[arch]") {
  ArchConfig arch = parse_arch_yaml(kMinimal, "dir/minimal.yaml");
  CHECK(arch.name == "minimal");  // the file's stem
  CHECK(arch.source == "dir/minimal.yaml");
  CHECK(arch.mxu.dataflow == Dataflow::WeightStationary);
  CHECK(arch.mxu.operand_type == DType::Int8);
  CHECK(arch.mxu.clock_mhz == 700);
  CHECK(arch.mxu.weight_double_buffering);
  // Buffers: one bank; bandwidth is what the array needs per cycle, max(rows, cols) = 8
  // operands for the unified and weight buffers and 8 int32 accumulators.
  CHECK(arch.unified_buffer.banks == 1);
  CHECK(arch.unified_buffer.bytes_per_cycle == 8);
  CHECK(arch.weight_buffer.bytes_per_cycle == 8);
  CHECK(arch.accumulator.bytes_per_cycle == 32);
  CHECK(arch.vpu.lanes == 4);  // mxu.cols
  CHECK(arch.vpu.add == VectorOpTiming{2, 1});
  CHECK(arch.vpu.mul == VectorOpTiming{2, 1});
  CHECK(arch.vpu.max == VectorOpTiming{2, 1});
  CHECK(arch.vpu.convert == VectorOpTiming{2, 1});
  CHECK(arch.vpu.exp == VectorOpTiming{8, 2});
  CHECK(arch.vpu.reciprocal == VectorOpTiming{8, 2});
  CHECK(arch.vpu.rsqrt == VectorOpTiming{8, 2});
  CHECK(arch.vpu.reduction == VectorOpTiming{4, 1});
  CHECK(arch.dram.bytes_per_cycle == 2.5);
  CHECK(arch.dram.latency_cycles == 100);
  CHECK(arch.dram.channels == 1);

  // The struct's own defaults are the YAML defaults.
  VpuConfig defaults;
  CHECK(defaults.exp == arch.vpu.exp);
  CHECK(DramConfig{}.latency_cycles == 100);
}

TEST_CASE("bf16 doubles the derived operand bandwidth, and accumulators are fp32", "[arch]") {
  ArchConfig arch = parse_arch_yaml(kMinimal, "m.yaml", {"mxu.operand_type=bf16"});
  CHECK(arch.unified_buffer.bytes_per_cycle == 16);
  CHECK(arch.weight_buffer.bytes_per_cycle == 16);
  CHECK(arch.accumulator.bytes_per_cycle == 32);
}

TEST_CASE("explicit zero means derived for bandwidth and lanes", "[arch]") {
  ArchConfig arch =
      parse_arch_yaml(kMinimal, "m.yaml", {"unified_buffer.bytes_per_cycle=0", "vpu.lanes=0"});
  CHECK(arch.unified_buffer.bytes_per_cycle == 8);
  CHECK(arch.vpu.lanes == 4);
}

TEST_CASE("byte sizes accept binary and decimal units", "[arch]") {
  auto ub_bytes = [](const std::string& value) {
    return parse_arch_yaml(kMinimal, "m.yaml", {"unified_buffer.bytes=" + value})
        .unified_buffer.bytes;
  };
  CHECK(ub_bytes("4096") == 4096);
  CHECK(ub_bytes("4096B") == 4096);
  CHECK(ub_bytes("4KiB") == 4096);
  CHECK(ub_bytes("4 MiB") == 4 * 1024 * 1024);
  CHECK(ub_bytes("24MiB") == 25165824);
  CHECK(ub_bytes("2GiB") == int64_t{2} << 30);
  CHECK(ub_bytes("4KB") == 4000);
  CHECK(ub_bytes("3 MB") == 3000000);
  CHECK(ub_bytes("1GB") == 1000000000);
}

TEST_CASE("overrides work on every preset and go through validation", "[arch]") {
  for (const auto& name : kPresets) {
    INFO(name);
    ArchConfig arch = load_arch(name, {"mxu.rows=8", "mxu.dataflow=os",
                                       "unified_buffer.bytes=3 MiB", "weight_buffer.bytes=64KiB",
                                       "vpu.exp.latency=12", "dram.channels=2", "name=custom"});
    CHECK(arch.mxu.rows == 8);
    CHECK(arch.mxu.dataflow == Dataflow::OutputStationary);
    CHECK(arch.unified_buffer.bytes == 3 * 1024 * 1024);
    CHECK(arch.weight_buffer.bytes == 64 * 1024);
    CHECK(arch.vpu.exp.latency == 12);
    CHECK(arch.vpu.exp.interval == 2);  // untouched
    CHECK(arch.dram.channels == 2);
    CHECK(arch.name == "custom");
    // Everything else is as the preset says.
    ArchConfig original = load_arch(name);
    CHECK(arch.mxu.cols == original.mxu.cols);
    CHECK(arch.accumulator.bytes == original.accumulator.bytes);
    CHECK(arch.dram.bytes_per_cycle == original.dram.bytes_per_cycle);
  }
  // A later override of the same key wins; values may carry spaces around '='.
  CHECK(load_arch("teach-4x4", {"mxu.rows=8", "mxu.rows = 16"}).mxu.rows == 16);
  // An override may create a section the file leaves out.
  CHECK(parse_arch_yaml(kMinimal, "m.yaml", {"vpu.rsqrt.interval=3"}).vpu.rsqrt.interval == 3);
  CHECK_THROWS_AS(load_arch("teach-4x4", {"mxu.rows=0"}), Error);
  // Derived values follow the overridden array: max(16, 4) int8 operands per cycle.
  CHECK(load_arch("teach-4x4", {"mxu.rows=16"}).unified_buffer.bytes_per_cycle == 16);
}

TEST_CASE("arch_to_yaml round-trips every preset", "[arch]") {
  for (const auto& name : kPresets) {
    INFO(name);
    ArchConfig original = load_arch(name);
    std::string printed = arch_to_yaml(original);
    ArchConfig reparsed = parse_arch_yaml(printed, "printed.yaml");
    CHECK(reparsed.source == "printed.yaml");
    reparsed.source = original.source;
    CHECK(reparsed == original);
    CHECK(arch_to_yaml(reparsed) == printed);
  }
}

TEST_CASE("arch_to_yaml prints every field with readable comments", "[arch]") {
  std::string printed = arch_to_yaml(load_arch("tpu-v1"));
  CHECK(
      printed.starts_with("name: tpu-v1\nmxu:\n  rows: 256\n  cols: 256\n  dataflow: ws\n"
                          "  operand_type: int8\n  clock_mhz: 700\n"
                          "  weight_double_buffering: true\nunified_buffer:\n"
                          "  bytes: 25165824  # 24 MiB\n  banks: 1\n  bytes_per_cycle: 256\n"));
  CHECK(printed.find("  reciprocal: { latency: 8, interval: 2 }\n") != std::string::npos);
  CHECK(
      printed.ends_with("dram:\n  bytes_per_cycle: 48.571429  # 34.0 GB/s at 700 MHz\n"
                        "  latency_cycles: 140\n  channels: 1\n"));
}

TEST_CASE("odd names and values survive the round trip", "[arch]") {
  ArchConfig arch =
      parse_arch_yaml(kMinimal, "m.yaml",
                      {"name='my chip: \"v2\"'", "mxu.clock_mhz=912.5", "dram.bytes_per_cycle=0.1",
                       "mxu.weight_double_buffering=false"});
  CHECK(arch.name == "my chip: \"v2\"");
  std::string printed = arch_to_yaml(arch);
  ArchConfig reparsed = parse_arch_yaml(printed, "m.yaml");
  CHECK(reparsed == arch);
  CHECK(arch_to_yaml(reparsed) == printed);
  ArchConfig null_name = parse_arch_yaml(kMinimal, "m.yaml", {"name='null'"});
  CHECK(parse_arch_yaml(arch_to_yaml(null_name), "m.yaml").name == "null");
}

TEST_CASE("format_byte_size picks the largest whole unit", "[arch]") {
  CHECK(format_byte_size(256) == "256 B");
  CHECK(format_byte_size(1024) == "1 KiB");
  CHECK(format_byte_size(25165824) == "24 MiB");
  CHECK(format_byte_size(int64_t{8} << 30) == "8 GiB");
  CHECK(format_byte_size(1536) == "1.50 KiB");
}

TEST_CASE("target_limits copies the array shape and buffer sizes", "[arch]") {
  TargetLimits limits = target_limits(load_arch("tpu-v1"));
  CHECK(limits.rows == 256);
  CHECK(limits.buffer_bytes[static_cast<int>(Buffer::Unified)] == 24 * 1024 * 1024);
  CHECK(limits.buffer_bytes[static_cast<int>(Buffer::Accumulator)] == 4 * 1024 * 1024);
}
