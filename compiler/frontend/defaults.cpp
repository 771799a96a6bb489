#include "compiler/frontend/defaults.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

namespace tpusim::frontend_defaults {

const double kUniformInt8Rms = 128 / std::sqrt(3.0);

double round_scale(double scale) {
  if (!(scale > 0) || !std::isfinite(scale)) return kDefaultWeightScale;
  return std::strtod(fmt::format("{:.3g}", scale).c_str(), nullptr);
}

double default_weight_scale(double fan_in) {
  return round_scale(std::sqrt(6.0 / std::max(1.0, fan_in)) / 128);
}

double accumulator_output_scale(double x_scale, double x_rms, double w_scale, double w_rms,
                                double reduction, double bias_rms) {
  const double accumulator_rms =
      std::sqrt(reduction * x_rms * x_rms * w_rms * w_rms + bias_rms * bias_rms);
  return x_scale * w_scale * accumulator_rms / kTargetRms;
}

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

std::string name_from_file(std::string_view file_name) {
  std::string name = std::filesystem::path(file_name).stem().string();
  for (char& c : name) {
    if (!is_name_char(c)) c = '_';
  }
  if (name.empty() || !is_name_start(name[0])) name = "model_" + name;
  return name;
}

}  // namespace tpusim::frontend_defaults
