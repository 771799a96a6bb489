// The PE-level systolic array: exact cycle timing (at the documented cycle and one cycle
// early), values byte-exact against plain reference loops, double buffering, valid gating and
// misuse checks. Timing expectations come from the closed forms in systolic_array.h.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ir/diagnostics.h"
#include "simulator/systolic_array.h"

using namespace tpusim;

namespace {

// A small dense matrix of operand values. Every value is representable in the operand type
// (int8, or bf16), so a double holds it exactly.
struct Matrix {
  int rows = 0;
  int cols = 0;
  std::vector<double> values;

  Matrix(int r, int c) : rows(r), cols(c), values(static_cast<size_t>(r) * c) {}
  double& at(int r, int c) { return values[static_cast<size_t>(r) * cols + c]; }
  double at(int r, int c) const { return values[static_cast<size_t>(r) * cols + c]; }
};

// Little-endian operand bytes of `values`.
std::vector<uint8_t> operand_bytes(DType type, const std::vector<double>& values) {
  std::vector<uint8_t> bytes(values.size() * dtype_size(type));
  for (size_t i = 0; i < values.size(); ++i) {
    store_element(type, &bytes[i * dtype_size(type)], values[i]);
  }
  return bytes;
}

std::vector<double> row_of(const Matrix& m, int r) {
  return {m.values.begin() + static_cast<ptrdiff_t>(r) * m.cols,
          m.values.begin() + static_cast<ptrdiff_t>(r + 1) * m.cols};
}
std::vector<double> column_of(const Matrix& m, int c) {
  std::vector<double> column(m.rows);
  for (int r = 0; r < m.rows; ++r) column[r] = m.at(r, c);
  return column;
}

// Random operands: int8 over the full range; bf16 with varied signs, significands and
// exponents (and some zeros), so rounding in the fp32 sums actually happens.
Matrix random_matrix(DType type, int rows, int cols, std::mt19937& rng) {
  Matrix m(rows, cols);
  std::uniform_int_distribution<int> int8_value(-128, 127);
  std::uniform_int_distribution<int> exponent(-10, 10);
  std::uniform_real_distribution<float> significand(-2.0f, 2.0f);
  for (double& v : m.values) {
    if (type == DType::Int8) {
      v = int8_value(rng);
    } else {
      const float f = rng() % 10 == 0 ? 0.0f : std::ldexp(significand(rng), exponent(rng));
      v = bf16_to_float(float_to_bf16(f));
    }
  }
  return m;
}

// The accumulator bit pattern of sum over i of a[i] * b[i], the way the array defines it:
// int32 wrapping, or fp32 adding each (exact) bf16 product in order, starting from +0.0.
uint32_t reference_dot(DType type, const std::vector<double>& a, const std::vector<double>& b) {
  if (type == DType::Int8) {
    uint32_t sum = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      sum += static_cast<uint32_t>(static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]));
    }
    return sum;
  }
  float sum = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    const float product = static_cast<float>(a[i]) * static_cast<float>(b[i]);
    sum += product;
  }
  return std::bit_cast<uint32_t>(sum);
}

uint32_t bottom_bits(const SystolicArray& array, int col) {
  uint32_t bits;
  std::memcpy(&bits, array.bottom().data() + static_cast<size_t>(col) * 4, 4);
  return bits;
}

// Loads the K x N `tile` into `bank`: K cycles, the tile's rows given last row first, so that
// tile row k ends in array row k.
void load_tile(SystolicArray& array, int bank, const Matrix& tile) {
  for (int k = tile.rows - 1; k >= 0; --k) {
    const std::vector<uint8_t> row = operand_bytes(array.operand_type(), row_of(tile, k));
    array.shift_stationary_row(bank, row.data(), tile.cols);
    array.step();
  }
}

// The cycle in which the vector injected at `injected` leaves column `col` (stationary mode).
int64_t leaves_bottom_at(const SystolicArray& array, int64_t injected, int col) {
  return injected + array.rows() - 1 + col;
}

const DType kOperandTypes[] = {DType::Int8, DType::BF16};

}  // namespace

TEST_CASE("stationary: a vector leaves column c at the end of cycle s + R - 1 + c, not before",
          "[systolic_array]") {
  struct Size {
    int rows, cols;
  };
  for (DType type : kOperandTypes) {
    for (Size size : {Size{4, 4}, Size{3, 5}, Size{8, 8}}) {
      CAPTURE(dtype_name(type), size.rows, size.cols);
      SystolicArray array(size.rows, size.cols, type, SystolicMode::Stationary);
      // Small positive weights and inputs: every partial sum is positive, so zero means "absent".
      Matrix weights(size.rows, size.cols);
      for (int r = 0; r < size.rows; ++r) {
        for (int c = 0; c < size.cols; ++c) weights.at(r, c) = 1 + (r + 2 * c) % 5;
      }
      load_tile(array, 0, weights);
      for (int idle = 0; idle < 2; ++idle) array.step();

      std::vector<double> input(size.rows);
      for (int r = 0; r < size.rows; ++r) input[r] = 1 + r % 3;
      const std::vector<uint8_t> bytes = operand_bytes(type, input);
      const int64_t injected = array.cycles();  // the cycle the next step() runs
      REQUIRE(injected == size.rows + 2);

      array.step(bytes.data(), size.rows, 0);
      for (int64_t cycle = injected;; array.step(), ++cycle) {
        REQUIRE(array.cycles() == cycle + 1);
        for (int c = 0; c < size.cols; ++c) {
          CAPTURE(cycle, c);
          const uint32_t expected = cycle == leaves_bottom_at(array, injected, c)
                                        ? reference_dot(type, input, column_of(weights, c))
                                        : 0;
          CHECK(bottom_bits(array, c) == expected);
          // The valid bit leaves with the result, and only then.
          CHECK(array.bottom_valid()[static_cast<size_t>(c)] ==
                (cycle == leaves_bottom_at(array, injected, c) ? 1 : 0));
          // The wavefront inside the array: PE(r,c) holds the sum of rows 0..r at s + r + c.
          for (int r = 0; r < size.rows; ++r) {
            const bool wave_here = cycle == injected + r + c;
            double partial = 0;
            for (int k = 0; k <= r; ++k) partial += input[k] * weights.at(k, c);
            CHECK(array.accumulator(r, c) == (wave_here ? partial : 0.0));
          }
        }
        if (cycle > leaves_bottom_at(array, injected, size.cols - 1)) break;
      }
      CHECK(array.pe_updates() == array.cycles() * size.rows * size.cols);
    }
  }
}

TEST_CASE("stationary: streamed GEMM matches a triple loop byte for byte", "[systolic_array]") {
  struct Shape {
    int rows, cols;  // the array
    int k, n, m;     // the tile: K x N weights, M vectors of K elements
  };
  const Shape shapes[] = {{4, 4, 4, 4, 9},      {8, 8, 5, 3, 17},     {3, 5, 2, 5, 7},
                          {16, 16, 16, 16, 40}, {17, 33, 17, 20, 50}, {40, 24, 31, 24, 33},
                          {1, 1, 1, 1, 4}};
  std::mt19937 rng(7);
  for (DType type : kOperandTypes) {
    for (const Shape& shape : shapes) {
      CAPTURE(dtype_name(type), shape.rows, shape.cols, shape.k, shape.n, shape.m);
      SystolicArray array(shape.rows, shape.cols, type, SystolicMode::Stationary);
      // Stale weights everywhere first, so rows >= K and columns >= N are not simply zero.
      load_tile(array, 0, random_matrix(type, shape.rows, shape.cols, rng));
      const Matrix weights = random_matrix(type, shape.k, shape.n, rng);
      const Matrix inputs = random_matrix(type, shape.m, shape.k, rng);
      load_tile(array, 0, weights);

      const int64_t first = array.cycles();
      const int64_t last_out = leaves_bottom_at(array, first + shape.m - 1, shape.n - 1);
      std::vector<uint32_t> outputs(static_cast<size_t>(shape.m) * shape.n, 0xdeadbeef);
      for (int64_t cycle = first; cycle <= last_out; ++cycle) {
        const int64_t vector = cycle - first;
        if (vector < shape.m) {
          const std::vector<uint8_t> bytes = operand_bytes(type, row_of(inputs, vector));
          array.step(bytes.data(), shape.k, 0);
        } else {
          array.step();
        }
        for (int c = 0; c < shape.n; ++c) {
          const int64_t leaving = cycle - (shape.rows - 1) - c - first;
          if (leaving >= 0 && leaving < shape.m)
            outputs[leaving * shape.n + c] = bottom_bits(array, c);
        }
      }
      for (int i = 0; i < shape.m; ++i) {
        for (int c = 0; c < shape.n; ++c) {
          CAPTURE(i, c);
          CHECK(outputs[i * shape.n + c] ==
                reference_dot(type, row_of(inputs, i), column_of(weights, c)));
        }
      }
    }
  }
}

TEST_CASE("stationary: weights change at the end of the shifting cycle", "[systolic_array]") {
  // A 2x3 array; one operand (2) enters row 0 in cycle 1 and multiplies in columns 0, 1, 2 in
  // cycles 1, 2, 3. A shift in cycle 3, the operand's last product, is legal and does not
  // reach that product: it reads W as of the end of cycle 2. A vector entering in cycle 4
  // sees the new row.
  const std::vector<uint8_t> ones = operand_bytes(DType::Int8, {1, 1, 1});
  const std::vector<uint8_t> fives = operand_bytes(DType::Int8, {5, 5, 5});
  const std::vector<uint8_t> two = operand_bytes(DType::Int8, {2});
  SystolicArray array(2, 3, DType::Int8, SystolicMode::Stationary);
  array.shift_stationary_row(0, ones.data(), 3);
  array.step();                  // cycle 0: W(0,:) = 1 at its end
  array.step(two.data(), 1, 0);  // cycle 1
  array.step();                  // cycle 2
  CHECK(array.bank_needed(0));   // column 2 is still to come
  array.shift_stationary_row(0, fives.data(), 3);
  // A second shift of the same bank in one cycle is a driver bug.
  CHECK_THROWS_AS(array.shift_stationary_row(0, fives.data(), 3), InternalError);
  array.step();  // cycle 3: the last product, then W(0,:) = 5
  CHECK(!array.bank_needed(0));
  CHECK(array.bank_in_use(0));                          // the operand is dropped in the next cycle
  std::vector<int32_t> seen = {array.bottom_int32(1)};  // column c leaves at 1 + (R-1) + c
  array.step(two.data(), 1, 0);                         // cycle 4
  seen.push_back(array.bottom_int32(2));
  for (int cycle = 5; cycle <= 7; ++cycle) {
    array.step();
    seen.push_back(array.bottom_int32(cycle - 5));
  }
  CHECK(seen == std::vector<int32_t>{2, 2, 10, 10, 10});
}

TEST_CASE("stationary: overwriting a bank that an operand still needs is an internal error",
          "[systolic_array]") {
  // An operand entering row 0 in cycle 0 multiplies in columns 0..C-1 in cycles 0..C-1. A shift
  // of its bank in cycle C-1 or later is legal; in any earlier cycle it would change the
  // weights under a product still to come.
  const int rows = 3, cols = 4;
  const std::vector<uint8_t> one = operand_bytes(DType::Int8, {1});
  const std::vector<uint8_t> row = operand_bytes(DType::Int8, {7, 7, 7, 7});
  for (int shift_cycle = 0; shift_cycle <= cols; ++shift_cycle) {
    CAPTURE(shift_cycle);
    SystolicArray array(rows, cols, DType::Int8, SystolicMode::Stationary);
    for (int cycle = 0; cycle < shift_cycle; ++cycle) {
      cycle == 0 ? array.step(one.data(), 1, 1) : array.step();
      CHECK(array.bank_needed(1) == (cycle < cols - 1));
    }
    array.shift_stationary_row(1, row.data(), cols);
    if (shift_cycle < cols - 1) {
      CHECK_THROWS_AS(shift_cycle == 0 ? array.step(one.data(), 1, 1) : array.step(),
                      InternalError);
    } else {
      CHECK_NOTHROW(array.step());
    }
  }
  // The other bank may shift meanwhile: that is double buffering.
  SystolicArray array(rows, cols, DType::Int8, SystolicMode::Stationary);
  array.shift_stationary_row(0, row.data(), cols);
  CHECK_NOTHROW(array.step(one.data(), 1, 1));
  CHECK(!array.bank_needed(0));
}

TEST_CASE("stationary: the weight shift chain shifts a queued tile one row per cycle",
          "[systolic_array]") {
  // A K-row tile queued before cycle s shifts in during [s, s+K-1] and is usable from s+K:
  // weight_rows_queued() counts down to 0 in cycle s+K-1, and a vector entering at s+K
  // multiplies the whole tile.
  std::mt19937 rng(3);
  for (DType type : kOperandTypes) {
    CAPTURE(dtype_name(type));
    const int rows = 5, cols = 3, k = 4;
    SystolicArray array(rows, cols, type, SystolicMode::Stationary);
    array.step();
    const Matrix tile = random_matrix(type, k, cols, rng);
    std::vector<uint8_t> elements;
    for (int r = 0; r < k; ++r) {
      const std::vector<uint8_t> bytes = operand_bytes(type, row_of(tile, r));
      elements.insert(elements.end(), bytes.begin(), bytes.end());
    }
    array.queue_stationary_tile(1, elements.data(), k, cols);
    CHECK_THROWS_AS(array.queue_stationary_tile(0, elements.data(), k, cols), InternalError);
    CHECK(array.weight_rows_queued(1) == k);
    CHECK(array.weight_rows_queued(0) == 0);
    CHECK(!array.empty());
    for (int shifted = 1; shifted <= k; ++shifted) {
      array.step();
      CHECK(array.weight_rows_queued(1) == k - shifted);
    }
    CHECK(array.empty());
    const Matrix input = random_matrix(type, 1, k, rng);
    const std::vector<uint8_t> feed = operand_bytes(type, row_of(input, 0));
    const int64_t injected = array.cycles();
    array.step(feed.data(), k, 1);
    for (int c = 0; c < cols; ++c) {
      while (array.cycles() - 1 < leaves_bottom_at(array, injected, c)) array.step();
      CAPTURE(c);
      CHECK(array.bottom_valid()[static_cast<size_t>(c)] == 1);
      CHECK(bottom_bits(array, c) == reference_dot(type, row_of(input, 0), column_of(tile, c)));
    }
  }
}

TEST_CASE("stationary: double buffering streams tile after tile with no bubble",
          "[systolic_array]") {
  // A miniature MXU driver: tile t multiplies bank t % 2, and the next tile's rows shift into
  // the other bank as soon as no operand in flight uses it. Each tile has enough vectors to
  // hide the next load, so vectors go in on consecutive cycles across tile boundaries.
  const int rows = 8, cols = 6;
  struct Tile {
    Matrix weights;
    Matrix inputs;
  };
  struct Injection {
    int64_t cycle;
    size_t tile;
    int vector;
  };
  for (DType type : kOperandTypes) {
    CAPTURE(dtype_name(type));
    std::mt19937 rng(11);
    std::vector<Tile> tiles;
    for (int k : {8, 5, 7, 3}) {
      const int m = rows + cols + k + 2;  // enough cycles to hide the next tile's load
      tiles.push_back({random_matrix(type, k, cols, rng), random_matrix(type, m, k, rng)});
    }
    std::vector<std::vector<uint32_t>> outputs;
    for (const Tile& tile : tiles) {
      outputs.emplace_back(static_cast<size_t>(tile.inputs.rows) * cols, 0xdeadbeef);
    }

    SystolicArray array(rows, cols, type, SystolicMode::Stationary);
    load_tile(array, 0, tiles[0].weights);
    std::vector<Injection> injections;
    size_t streaming = 0;  // the tile being fed
    int next_vector = 0;   // its next vector
    size_t loading = 1;    // the tile being shifted into the other bank
    int rows_loaded = 0;
    int64_t last_output = 0;
    while (streaming < tiles.size() || array.cycles() <= last_output) {
      std::vector<uint8_t> feed;
      int feed_rows = 0;
      const int bank = static_cast<int>(streaming % 2);
      if (streaming < tiles.size()) {
        if (loading == streaming + 1 && loading < tiles.size() && !array.bank_in_use(1 - bank)) {
          const Matrix& next = tiles[loading].weights;
          const std::vector<uint8_t> row =
              operand_bytes(type, row_of(next, next.rows - 1 - rows_loaded));
          array.shift_stationary_row(1 - bank, row.data(), cols);
          if (++rows_loaded == next.rows) ++loading, rows_loaded = 0;
        }
        const Tile& tile = tiles[streaming];
        feed = operand_bytes(type, row_of(tile.inputs, next_vector));
        feed_rows = tile.weights.rows;
        injections.push_back({array.cycles(), streaming, next_vector});
        last_output = leaves_bottom_at(array, array.cycles(), cols - 1);
        if (++next_vector == tile.inputs.rows) {
          // The next tile must be fully loaded by now: switch banks with no idle cycle.
          REQUIRE((streaming + 1 == tiles.size() || loading > streaming + 1));
          ++streaming, next_vector = 0;
        }
      }
      array.step(feed_rows > 0 ? feed.data() : nullptr, feed_rows, bank);

      // Vectors went in on consecutive cycles, so the one leaving column c is found by index.
      const int64_t cycle = array.cycles() - 1;
      for (int c = 0; c < cols; ++c) {
        const int64_t injected = cycle - (rows - 1) - c;
        const int64_t index = injected - injections.front().cycle;
        if (index < 0 || index >= static_cast<int64_t>(injections.size())) continue;
        const Injection& in = injections[index];
        REQUIRE(in.cycle == injected);
        outputs[in.tile][static_cast<size_t>(in.vector) * cols + c] = bottom_bits(array, c);
      }
    }
    for (size_t t = 0; t < tiles.size(); ++t) {
      for (int i = 0; i < tiles[t].inputs.rows; ++i) {
        for (int c = 0; c < cols; ++c) {
          CAPTURE(t, i, c);
          CHECK(outputs[t][static_cast<size_t>(i) * cols + c] ==
                reference_dot(type, row_of(tiles[t].inputs, i), column_of(tiles[t].weights, c)));
        }
      }
    }
  }
}

TEST_CASE("stationary: consecutive vectors may alternate banks", "[systolic_array]") {
  const int rows = 5, cols = 4, vectors = 12;
  std::mt19937 rng(5);
  for (DType type : kOperandTypes) {
    CAPTURE(dtype_name(type));
    SystolicArray array(rows, cols, type, SystolicMode::Stationary);
    const Matrix weights[2] = {random_matrix(type, rows, cols, rng),
                               random_matrix(type, 3, cols, rng)};  // bank 1: K = 3
    load_tile(array, 0, weights[0]);
    load_tile(array, 1, weights[1]);
    const Matrix inputs = random_matrix(type, vectors, rows, rng);
    const int64_t first = array.cycles();
    for (int64_t cycle = first; cycle <= leaves_bottom_at(array, first + vectors - 1, cols - 1);
         ++cycle) {
      const int64_t vector = cycle - first;
      if (vector < vectors) {
        const int bank = static_cast<int>(vector % 2);
        const std::vector<uint8_t> bytes = operand_bytes(type, row_of(inputs, vector));
        array.step(bytes.data(), weights[bank].rows, bank);
      } else {
        array.step();
      }
      for (int c = 0; c < cols; ++c) {
        const int64_t leaving = cycle - (rows - 1) - c - first;
        if (leaving < 0 || leaving >= vectors) continue;
        const Matrix& w = weights[leaving % 2];
        std::vector<double> x = row_of(inputs, leaving);
        x.resize(w.rows);
        CAPTURE(leaving, c);
        CHECK(bottom_bits(array, c) == reference_dot(type, x, column_of(w, c)));
      }
    }
  }
}

TEST_CASE("stationary: bank_in_use covers the skew line and every column", "[systolic_array]") {
  const int rows = 4, cols = 3, feed_rows = 3;
  SystolicArray array(rows, cols, DType::Int8, SystolicMode::Stationary);
  const std::vector<uint8_t> feed = operand_bytes(DType::Int8, {1, 2, 3});
  array.step();
  const int64_t injected = array.cycles();
  array.step(feed.data(), feed_rows, 1);
  CHECK(!array.bank_in_use(0));
  // Row r's operand enters at s + r, sits in the last column at s + r + C - 1 and leaves in
  // the next cycle: the bank is in use through the end of cycle s + feed_rows + C - 2.
  const int64_t last_in_use = injected + feed_rows + cols - 2;
  while (array.cycles() - 1 < last_in_use) {
    CHECK(array.bank_in_use(1));
    array.step();
  }
  CHECK(array.bank_in_use(1));
  array.step();
  CHECK(!array.bank_in_use(1));
  CHECK(!array.bank_in_use(0));
}

TEST_CASE("stationary: invalid operands add nothing, whatever stale weights hold",
          "[systolic_array]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int rows = 8, cols = 5, k = 3;
  SystolicArray array(rows, cols, DType::BF16, SystolicMode::Stationary);
  // Poison both banks everywhere, then load a K-row tile into bank 0: rows >= K keep poison.
  Matrix poison(rows, cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double choices[] = {nan, inf, -inf, -0.0};
      poison.at(r, c) = choices[(r + c) % 4];
    }
  }
  load_tile(array, 0, poison);
  load_tile(array, 1, poison);
  Matrix weights(k, cols);
  for (int r = 0; r < k; ++r) {
    for (int c = 0; c < cols; ++c) weights.at(r, c) = c == 4 ? 0.0 : 0.5 * (r + 1) - c;
  }
  load_tile(array, 0, weights);

  // A full-height vector first (its rows >= K must not linger), then K-row vectors; the last
  // one multiplies zeros by -1: every product is -0.0, and the sum starts from +0.0.
  std::vector<std::vector<double>> vectors = {
      {1, 2, 3, 4, 5, 6, 7, 8}, {1.5, -2, 0.25}, {-1, -1, -1}};
  const int64_t first = array.cycles();
  const std::vector<uint8_t> full = operand_bytes(DType::BF16, vectors[0]);
  array.step(full.data(), rows, 1);  // bank 1 is all poison: this result is NaN, by design
  for (size_t v = 1; v < vectors.size(); ++v) {
    const std::vector<uint8_t> bytes = operand_bytes(DType::BF16, vectors[v]);
    array.step(bytes.data(), k, 0);
  }
  for (int64_t cycle = array.cycles(); cycle <= leaves_bottom_at(array, first + 2, cols - 1);
       ++cycle) {
    array.step();
    for (int c = 0; c < cols; ++c) {
      const int64_t leaving = cycle - (rows - 1) - c - first;
      if (leaving < 1 || leaving > 2) continue;
      CAPTURE(leaving, c);
      const uint32_t bits = bottom_bits(array, c);
      CHECK(bits == reference_dot(DType::BF16, vectors[leaving], column_of(weights, c)));
      CHECK(std::isfinite(std::bit_cast<float>(bits)));
      if (leaving == 2 && c == 4) CHECK(bits == 0u);  // +0.0, not -0.0
    }
  }
}

TEST_CASE("output stationary: C = A * B, with exact meeting and drain timing", "[systolic_array]") {
  struct Shape {
    int rows, cols;  // the array
    int m, k, n;     // A is M x K, B is K x N
  };
  const Shape shapes[] = {{4, 4, 4, 6, 4}, {8, 8, 5, 9, 3}, {3, 5, 3, 4, 5}, {6, 20, 2, 7, 18}};
  std::mt19937 rng(3);
  for (DType type : kOperandTypes) {
    for (const Shape& shape : shapes) {
      CAPTURE(dtype_name(type), shape.rows, shape.cols, shape.m, shape.k, shape.n);
      const Matrix a = random_matrix(type, shape.m, shape.k, rng);
      const Matrix b = random_matrix(type, shape.k, shape.n, rng);
      SystolicArray array(shape.rows, shape.cols, type, SystolicMode::OutputStationary);

      // Pair k (column k of A, row k of B) goes in at cycle k and meets at PE(m,n) at k + m + n;
      // after cycle t, PE(m,n) holds the products of pairs 0 .. t - m - n.
      const int compute_cycles = shape.k + shape.m + shape.n - 2;
      for (int cycle = 0; cycle < compute_cycles; ++cycle) {
        if (cycle < shape.k) {
          const std::vector<uint8_t> left = operand_bytes(type, column_of(a, cycle));
          const std::vector<uint8_t> top = operand_bytes(type, row_of(b, cycle));
          array.step_os(left.data(), shape.m, top.data(), shape.n);
        } else {
          array.step_os(nullptr, 0, nullptr, 0);
        }
        for (int c = 0; c < shape.cols; ++c) CHECK(bottom_bits(array, c) == 0u);
        // The last pair meets in the last compute cycle: only then are none pending.
        CHECK((array.pairs_pending() == 0) == (cycle == compute_cycles - 1));
        for (int m = 0; m < shape.rows; ++m) {
          for (int n = 0; n < shape.cols; ++n) {
            const int pairs = std::clamp(cycle - m - n + 1, 0, shape.k);
            std::vector<double> x, y;
            if (m < shape.m && n < shape.n) {
              for (int p = 0; p < pairs; ++p) x.push_back(a.at(m, p)), y.push_back(b.at(p, n));
            }
            const uint32_t expected = reference_dot(type, x, y);
            CAPTURE(cycle, m, n);
            if (type == DType::Int8) {
              CHECK(array.accumulator(m, n) == static_cast<int32_t>(expected));
            } else {
              CHECK(array.accumulator(m, n) == std::bit_cast<float>(expected));
            }
          }
        }
      }
      REQUIRE(array.cycles() == compute_cycles);

      // Drain: at drain cycle d the value of row R - 1 - d leaves the bottom.
      for (int d = 0; d < shape.rows; ++d) {
        array.drain_os();
        const int row = shape.rows - 1 - d;
        for (int c = 0; c < shape.cols; ++c) {
          CAPTURE(d, row, c);
          const bool computed = row < shape.m && c < shape.n;
          CHECK(bottom_bits(array, c) ==
                (computed ? reference_dot(type, row_of(a, row), column_of(b, c)) : 0u));
          CHECK(array.bottom_valid()[static_cast<size_t>(c)] ==
                (row < shape.m ? 1 : 0));  // per row
        }
        CHECK(array.holds_partial_sums() == (d < shape.rows - 1));  // row 0 leaves last
      }
      for (int m = 0; m < shape.rows; ++m) {
        for (int n = 0; n < shape.cols; ++n) CHECK(array.accumulator(m, n) == 0.0);
      }
      CHECK(array.cycles() == compute_cycles + shape.rows);
    }
  }
}

TEST_CASE("output stationary: draining one cycle before the last pair meets is an error",
          "[systolic_array]") {
  const int m = 3, k = 2, n = 2;
  SystolicArray array(4, 4, DType::Int8, SystolicMode::OutputStationary);
  const std::vector<uint8_t> ones = operand_bytes(DType::Int8, {1, 1, 1});
  for (int cycle = 0; cycle < k + m + n - 3; ++cycle) {
    if (cycle < k) {
      array.step_os(ones.data(), m, ones.data(), n);
    } else {
      array.step_os(nullptr, 0, nullptr, 0);
    }
  }
  // The last pair meets at PE(m-1, n-1) in cycle k + m + n - 3: draining then would lose it.
  CHECK_THROWS_AS(array.drain_os(), InternalError);
}

TEST_CASE("int32 accumulators wrap two's complement without undefined behaviour",
          "[systolic_array]") {
  // A stationary pass sums at most R products of 2^14, so only a long output-stationary
  // accumulation can overflow: (2^17 + 1) products of (-128)(-128) = 2^31 + 2^14.
  SystolicArray array(1, 1, DType::Int8, SystolicMode::OutputStationary);
  const std::vector<uint8_t> minimum = operand_bytes(DType::Int8, {-128});
  const int products = (1 << 17) + 1;
  for (int i = 0; i < products; ++i) array.step_os(minimum.data(), 1, minimum.data(), 1);
  const int32_t wrapped = std::numeric_limits<int32_t>::min() + (1 << 14);
  CHECK(array.accumulator(0, 0) == wrapped);
  array.drain_os();
  CHECK(array.bottom_int32(0) == wrapped);
  array.reset_os();
  CHECK(array.accumulator(0, 0) == 0);
}

TEST_CASE("systolic array misuse is an internal error", "[systolic_array]") {
  SystolicArray stationary(4, 3, DType::Int8, SystolicMode::Stationary);
  SystolicArray output_stationary(4, 3, DType::BF16, SystolicMode::OutputStationary);
  const std::vector<uint8_t> bytes(16, 0);
  CHECK_THROWS_AS(stationary.step(bytes.data(), 5, 0), InternalError);  // feed_rows > R
  CHECK_THROWS_AS(stationary.step(bytes.data(), -1, 0), InternalError);
  CHECK_THROWS_AS(stationary.step(bytes.data(), 4, 2), InternalError);  // no bank 2
  CHECK_THROWS_AS(stationary.step(nullptr, 2, 0), InternalError);       // rows but no data
  CHECK_THROWS_AS(stationary.shift_stationary_row(0, bytes.data(), 4), InternalError);
  CHECK_THROWS_AS(stationary.shift_stationary_row(-1, bytes.data(), 3), InternalError);
  CHECK_THROWS_AS(stationary.step_os(bytes.data(), 1, bytes.data(), 1), InternalError);
  CHECK_THROWS_AS(stationary.drain_os(), InternalError);
  CHECK_THROWS_AS(stationary.bottom_fp32(0), InternalError);
  CHECK_THROWS_AS(stationary.bottom_int32(3), InternalError);
  CHECK_THROWS_AS(stationary.accumulator(4, 0), InternalError);
  CHECK_THROWS_AS(output_stationary.step(bytes.data(), 1, 0), InternalError);
  CHECK_THROWS_AS(output_stationary.shift_stationary_row(0, bytes.data(), 1), InternalError);
  CHECK_THROWS_AS(output_stationary.bank_in_use(0), InternalError);
  CHECK_THROWS_AS(output_stationary.step_os(bytes.data(), 5, nullptr, 0), InternalError);
  CHECK_THROWS_AS(output_stationary.step_os(nullptr, 0, bytes.data(), 4), InternalError);
  CHECK_THROWS_AS(SystolicArray(0, 4, DType::Int8, SystolicMode::Stationary), InternalError);
  CHECK_THROWS_AS(SystolicArray(4, 4, DType::FP32, SystolicMode::Stationary), InternalError);
  CHECK(stationary.cycles() == 0);
}
