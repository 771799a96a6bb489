// Golden tests for the program text format: each tests/golden/programs/NAME.tpu is parsed and
// printed, and the text must equal NAME.expected.tpu beside it; the expected text itself must
// survive print -> parse -> print unchanged.
//
// To accept new output after a deliberate change to the printer, run the suite with
// TPUSIM_UPDATE_GOLDEN=1 and review the diff of the .expected.tpu files before committing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ir/program.h"
#include "test_util.h"

using namespace tpusim;

namespace {

// Every golden program, by name. A new file in programs/ must be added here (the last test
// case checks that none is forgotten).
const std::vector<std::string> kGoldenPrograms = {
    "all-opcodes",      // every opcode with every field, non-default values, any field order
    "defaults",         // fields given their default values are left out
    "loops-affine",     // nested repeats, affine expressions, hex integers
    "comments-labels",  // comments, blank lines, quoted labels, tokens with init
    "whitespace",       // tabs, extra spaces, CRLF line ends, no newline at the end
};

std::string programs_dir() { return std::string(TPUSIM_TEST_DATA) + "/golden/programs"; }

bool updating() {
  const char* update = std::getenv("TPUSIM_UPDATE_GOLDEN");
  return update != nullptr && std::string(update) == "1";
}

}  // namespace

TEST_CASE("golden programs print canonically and round-trip", "[golden][program]") {
  for (const auto& name : kGoldenPrograms) {
    DYNAMIC_SECTION(name) {
      std::string input_path = programs_dir() + "/" + name + ".tpu";
      std::string expected_path = programs_dir() + "/" + name + ".expected.tpu";
      Program program = parse_program(test::read_text_file(input_path), name + ".tpu");
      std::string printed = print_program(program);
      if (updating()) test::write_text_file(expected_path, printed);
      std::string expected = test::read_text_file(expected_path);
      CHECK(printed == expected);

      // print -> parse -> print is byte-identical.
      Program reparsed = parse_program(expected, name + ".expected.tpu");
      CHECK(print_program(reparsed) == expected);
    }
  }
}

TEST_CASE("every golden program in the directory is listed", "[golden]") {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(programs_dir())) {
    std::string file = entry.path().filename().string();
    const std::string expected_suffix = ".expected.tpu";
    if (file.size() > expected_suffix.size() &&
        file.compare(file.size() - expected_suffix.size(), expected_suffix.size(), expected_suffix) == 0) {
      file = file.substr(0, file.size() - expected_suffix.size()) + ".tpu";
    }
    if (file.size() > 4 && file.compare(file.size() - 4, 4, ".tpu") == 0) {
      std::string name = file.substr(0, file.size() - 4);
      INFO(file);
      CHECK(std::find(kGoldenPrograms.begin(), kGoldenPrograms.end(), name) != kGoldenPrograms.end());
      found.push_back(name);
    }
  }
  for (const auto& name : kGoldenPrograms) {
    INFO(name);
    CHECK(std::count(found.begin(), found.end(), name) == 2);  // NAME.tpu and NAME.expected.tpu
  }
}
