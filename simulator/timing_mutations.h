// Test-only faults in the simulator's timing, for the mutation tests
// (tests/unit/timing_mutation_test.cpp). Each field moves one closed-form term of the fast MXU
// schedule, or one mechanism of the PE array, by a cycle or so; the comparison of the two
// fidelities must notice every one of them. Everything is zero outside those tests, and the
// simulator reads these once per run (per array), so a normal run pays nothing for them.
#pragma once

namespace tpusim {

// One offset, in cycles, per closed form of docs/cycle-model.md that the MXU uses at fast
// fidelity (s = issue cycle; K, T, N, M as in the doc; R x C the array).
struct FastMxuTimingOffsets {
  int shift_end = 0;       // a load shifts during [s, s+K-1]; the next load may issue at s+K
  int tile_ready = 0;      // a matmul may use the tile from s+K
  int load_done = 0;       // a load is done at s+K-1
  int stream_free = 0;     // the next matmul may enter at s+T
  int matmul_done = 0;     // a matmul is done at s+T+R+N-3
  int bank_free = 0;       // its bank is free from s+T+K+C-2
  int outputs_begin = 0;   // the accumulator port is written from s+R-1 ...
  int outputs_end = 0;     // ... through s+T+R+N-3
  int os_drain_start = 0;  // an os matmul drains from s+T+M+N-2
  int os_done = 0;         // and is done R-1 cycles later
  int os_stream_free = 0;  // the next os matmul may enter the cycle after that
  int os_row_written = 0;  // row m is written at drain_start + R-1-m
};

// Off-by-one faults of the PE array (simulator/systolic_array.cpp).
struct PeArrayFaults {
  int skew = 0;  // the skew line delays row r >= 1 by max(0, r + skew) cycles instead of r
  // > 0: a queued tile starts shifting that many cycles late; < 0: the first two rows of a tile
  // of two or more rows shift in one cycle (the tile takes K - 1 cycles).
  int weight_shift = 0;
};

struct TimingMutations {
  FastMxuTimingOffsets fast_mxu;
  PeArrayFaults pe_array;
};

// The process-wide mutations. Only tests write them, and they put back the zeros afterwards.
TimingMutations& timing_mutations();

}  // namespace tpusim
