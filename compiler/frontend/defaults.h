// What every model frontend (the model format, SCALE-Sim topologies) fills in the same way when
// the input does not say: the default int8 scales (docs/model-format.md, "Quantization scales")
// and the rules for the graph's names. One copy, so a layer read from either frontend gets the
// same scales and seeds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tpusim::frontend_defaults {

// Each int8 value has an estimated RMS in integer steps; a layer without a given scale picks the
// one that puts its output's RMS at kTargetRms, so about four standard deviations fit before
// int8 saturates.
constexpr double kTargetRms = 32;
extern const double kUniformInt8Rms;  // seeded int8 data, uniform [-128, 127]: 128/sqrt(3)
constexpr double kDefaultWeightScale = 1.0 / 128;  // fallback when weights measure as all zero
constexpr double kDefaultInputScale = 1.0 / 128;   // inputs span [-1, 1)
constexpr uint64_t kDefaultSeed = 1;               // base seed of weights without a file

// Default scales are rounded to three significant digits so printed graphs stay readable; a
// scale that is not a positive finite number (all-zero weights) becomes kDefaultWeightScale.
double round_scale(double scale);

// He initialization: seeded int8 weights taken to span +-sqrt(6 / fan_in), so the scale is
// sqrt(6 / fan_in) / 128, rounded.
double default_weight_scale(double fan_in);

// The output scale of a conv, linear or matmul before rounding: the accumulator's RMS
// sqrt(K * r_x^2 * r_w^2 + r_b^2) in steps of s_x * s_w, brought to kTargetRms steps.
double accumulator_output_scale(double x_scale, double x_rms, double w_scale, double w_rms,
                                double reduction, double bias_rms);

// The graph's names: letters, digits, '_' and '.', starting with a letter or '_'.
bool is_name_start(char c);
bool is_name_char(char c);

// A graph name from a file name: its stem with other characters made '_', and "model_" in
// front when it does not start with a letter or '_' ("tiny-cnn.yaml" -> "tiny_cnn").
std::string name_from_file(std::string_view file_name);

}  // namespace tpusim::frontend_defaults
