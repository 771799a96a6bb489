// SCALE-Sim topologies (docs/scalesim.md): the files SCALE-Sim ships give the layer counts, MACs
// and GEMM shapes SCALE-Sim computes for them; both layouts, the forms of a row, names, the
// output size SCALE-Sim counts, depthwise layers, and the defaults shared with the model format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "compiler/frontend/scalesim_topology.h"
#include "compiler/frontend/yaml_model.h"
#include "compiler/passes/passes.h"
#include "ir/graph.h"
#include "simulator/random_data.h"
#include "test_util.h"

using namespace tpusim;

namespace {

Graph load_example(const std::string& file) {
  return load_scalesim_topology(test::source_dir() + "/examples/scalesim/" + file);
}

const Value& value(const Graph& graph, const std::string& name) {
  const int index = graph.find_value(name);
  INFO(name);
  REQUIRE(index >= 0);
  return graph.values[static_cast<size_t>(index)];
}

const GemmKernel& gemm(const KernelModule& module, const std::string& name) {
  const GemmKernel* found = nullptr;
  for (const Kernel& k : module.kernels) {
    if (kernel_name(k) == name) found = std::get_if<GemmKernel>(&k);
  }
  INFO(name);
  REQUIRE(found != nullptr);
  return *found;
}

struct Mkn {
  int64_t m, k, n;
};
Mkn mkn(const GemmKernel& k) {
  return {k.M, k.K, k.N};
}
bool operator==(const Mkn& a, const Mkn& b) {
  return a.m == b.m && a.k == b.k && a.n == b.n;
}
std::ostream& operator<<(std::ostream& out, const Mkn& x) {
  return out << "M=" << x.m << " K=" << x.k << " N=" << x.n;
}

const std::string kConvHeader =
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n";

Graph parse(const std::string& rows, const ScaleSimOptions& options = {}) {
  return parse_scalesim_topology(kConvHeader + rows, "t.csv", options);
}

}  // namespace

TEST_CASE("ResNet-18: 21 independent convolutions with SCALE-Sim's GEMM shapes", "[scalesim]") {
  const Graph graph = load_example("Resnet18.csv");
  CHECK(graph.name == "Resnet18");
  REQUIRE(graph.ops.size() == 21);
  CHECK(graph.outputs.size() == 21);
  for (const Op& op : graph.ops) {
    INFO(op.name);
    CHECK(op.kind == OpKind::Conv);
    REQUIRE(op.inputs.size() == 2);  // no bias
    // Its own input, its own weights; its result is a graph output.
    CHECK(graph.values[static_cast<size_t>(op.inputs[0])].kind == ValueKind::Input);
    CHECK(graph.values[static_cast<size_t>(op.inputs[0])].name == op.name + ".ifmap");
    CHECK(graph.values[static_cast<size_t>(op.inputs[1])].kind == ValueKind::Weight);
    CHECK(std::find(graph.outputs.begin(), graph.outputs.end(), op.output) != graph.outputs.end());
  }
  // SCALE-Sim's im2col: M = E * F output pixels with E = ceil((H - R + s) / s), K = R * S * C,
  // N = filters (topology_utils.py, topo_calc_hyperparams), computed from the CSV's rows.
  const KernelModule module = unroll_to_kernels(graph, LoweringOptions{});
  CHECK(mkn(gemm(module, "Conv1")) == Mkn{110 * 110, 7 * 7 * 3, 64});     // 224, 7x7, stride 2
  CHECK(mkn(gemm(module, "Conv2_1a")) == Mkn{54 * 54, 3 * 3 * 64, 64});   // 56, 3x3: no padding
  CHECK(mkn(gemm(module, "Conv3_1a")) == Mkn{28 * 28, 3 * 3 * 64, 128});  // 56, 3x3, stride 2
  CHECK(mkn(gemm(module, "Conv3_s")) == Mkn{29 * 29, 64, 128});           // 56, 1x1, stride 2
  CHECK(mkn(gemm(module, "Conv5_1b")) == Mkn{5 * 5, 3 * 3 * 512, 512});
  CHECK(mkn(gemm(module, "FC")) == Mkn{1, 512, 1000});
  // SCALE-Sim's total: the sum of E * F * R * S * C * N over the rows.
  CHECK(graph_macs(graph) == 1471181568);
}

TEST_CASE("the topologies SCALE-Sim ships: layer counts and SCALE-Sim's MAC totals", "[scalesim]") {
  struct Example {
    const char* file;
    size_t layers;
    int64_t macs;  // SCALE-Sim's num_mac summed over the layers
  };
  const std::vector<Example> examples = {
      {"alexnet.csv", 5, 805118496},
      {"yolo_tiny.csv", 9, 1753649072},  // CRLF line ends
      {"mobilnet_paper.csv", 28,
       551539642},  // '#dw' comments, tab indents, a row without its last comma
      {"test.csv", 1, 16588800},
      {"vit_s.csv", 5, 196 * (192 * 384 + 1176 * 64 + 64 * 1176 + 1536 * 384 + 384 * 1536)},
      {"test_mnk_input.csv", 1, 256 * 128 * 256},
  };
  for (const auto& e : examples) {
    DYNAMIC_SECTION(e.file) {
      const Graph graph = load_example(e.file);
      CHECK(graph.ops.size() == e.layers);
      CHECK(graph.outputs.size() == e.layers);
      CHECK(graph_macs(graph) == e.macs);
    }
  }
  const KernelModule alexnet = unroll_to_kernels(load_example("alexnet.csv"), LoweringOptions{});
  CHECK(mkn(gemm(alexnet, "Conv1")) == Mkn{55 * 55, 11 * 11 * 3, 96});  // 224, 11x11, stride 4
  const KernelModule mobilenet =
      unroll_to_kernels(load_example("mobilnet_paper.csv"), LoweringOptions{});
  CHECK(mkn(gemm(mobilenet, "Conv11")) ==
        Mkn{28 * 28, 256, 256});  // the row without a trailing comma
  CHECK(mkn(gemm(mobilenet, "Conv14_dw_0")) == Mkn{12 * 12, 9, 1});  // tab-indented
}

TEST_CASE("GEMM rows: linear(ifmap [M, K], w [N, K]), SCALE-Sim's columns M, N, K", "[scalesim]") {
  const Graph graph = load_example("vit_s.csv");
  const Op& l1 = graph.ops.at(1);
  CHECK(l1.kind == OpKind::Linear);
  CHECK(l1.name == "L1");  // L1,196,1176,64: M = 196, N = 1176, K = 64
  CHECK(value(graph, "L1.ifmap").shape == std::vector<int64_t>{196, 64});
  CHECK(value(graph, "L1.w").shape == std::vector<int64_t>{1176, 64});
  CHECK(value(graph, "L1").shape == std::vector<int64_t>{196, 1176});
  CHECK(mkn(gemm(unroll_to_kernels(graph, LoweringOptions{}), "L1")) == Mkn{196, 64, 1176});
  // "Layer Name" heads test_mnk_input.csv; its layer "Test 1" has a space.
  const Graph test = load_example("test_mnk_input.csv");
  CHECK(test.ops.at(0).name == "Test_1");
  CHECK(value(test, "Test_1.ifmap").shape == std::vector<int64_t>{256, 256});
}

TEST_CASE("a row: trailing comma optional, blanks, comments, CRLF, any header spacing",
          "[scalesim]") {
  const std::string text =
      "\xEF\xBB\xBF  layer NAME ,ifmap height,IFMAP  Width,Filter Height,Filter Width,Channels,Num "
      "Filter,STRIDES\r\n"
      "\r\n"
      "# a comment line\n"
      "\tA, 8, 8, 3, 3, 2, 4, 1,   # a comment after the row\r\n"
      "B,8,8,3,3,2,4,1\n"
      "   \n"
      "C , 8 , 8 , 3 , 3 , 2 , 4 , +1 ,\n";
  const Graph graph = parse_scalesim_topology(text, "t.csv");
  REQUIRE(graph.ops.size() == 3);
  for (const Op& op : graph.ops) {
    INFO(op.name);
    CHECK(graph.values[static_cast<size_t>(op.output)].shape == std::vector<int64_t>{1, 4, 6, 6});
  }
  CHECK(graph.ops[0].location.line == 4);
  CHECK(graph.ops[0].location.column == 2);  // after the tab
  // The GEMM header is detected the same way.
  CHECK(parse_scalesim_topology("LAYER,m,n,k\nG,2,3,4\n", "t.csv").ops.at(0).kind ==
        OpKind::Linear);
}

TEST_CASE("layer names become unique graph names", "[scalesim]") {
  const Graph graph = parse(
      "Conv 1, 8, 8, 1, 1, 1, 1, 1,\n"
      "1x1, 8, 8, 1, 1, 1, 1, 1,\n"
      "layer1.0, 8, 8, 1, 1, 1, 1, 1,\n"
      "Conv 1, 8, 8, 1, 1, 1, 1, 1,\n"    // SCALE-Sim allows a name twice (its sparsity/gemm.csv
                                          // does)
      "Conv_1, 8, 8, 1, 1, 1, 1, 1,\n");  // and this one becomes the same name
  std::vector<std::string> names;
  for (const Op& op : graph.ops) names.push_back(op.name);
  CHECK(names ==
        std::vector<std::string>{"Conv_1", "layer_1x1", "layer1.0", "Conv_1_2", "Conv_1_3"});
  // The names are the graph's: the text form reads back.
  CHECK(print_graph(parse_graph(print_graph(graph), "t.graph")) == print_graph(graph));
}

TEST_CASE("SCALE-Sim's output size: the last window may run past the edge", "[scalesim]") {
  // E = ceil((H - R + s) / s): 10 rows, 3-row filter, stride 2 -> ceil(9 / 2) = 5 rows, one more
  // than a valid convolution's floor(7 / 2) + 1 = 4. The fifth window reads rows 8..10, and row
  // 10 is past the input: SCALE-Sim reads nothing there, the graph pads one row at the bottom.
  const Graph graph = parse(
      "Edge, 10, 9, 3, 2, 3, 5, 2,\n"
      "Even, 9, 9, 3, 3, 3, 5, 2,\n"      // s divides H - R: no padding
      "Past, 10, 10, 1, 1, 4, 8, 4,\n");  // windows at 0, 4, 8, 12: the last one wholly past the
                                          // edge
  CHECK(graph.ops[0].attr_ints("pads", {}) == std::vector<int64_t>{0, 0, 1, 1});
  CHECK(value(graph, "Edge").shape == std::vector<int64_t>{1, 5, 5, 5});
  CHECK(graph.ops[1].attr_ints("pads", {}) == std::vector<int64_t>{0, 0, 0, 0});
  CHECK(value(graph, "Even").shape == std::vector<int64_t>{1, 5, 4, 4});
  CHECK(graph.ops[2].attr_ints("pads", {}) == std::vector<int64_t>{0, 0, 3, 3});
  CHECK(value(graph, "Past").shape == std::vector<int64_t>{1, 8, 4, 4});
}

TEST_CASE("a name with 'DP' is SCALE-Sim's depthwise layer: one GEMM per channel", "[scalesim]") {
  // SCALE-Sim splits it into Channels layers of one channel and all the filters each.
  const Graph graph = parse("Conv_DP, 9, 9, 3, 3, 6, 2, 1,\nConv_dp, 9, 9, 3, 3, 6, 2, 1,\n");
  CHECK(graph.ops[0].attr_int("groups", 1) == 6);
  CHECK(value(graph, "Conv_DP.w").shape == std::vector<int64_t>{12, 1, 3, 3});
  CHECK(value(graph, "Conv_DP").shape == std::vector<int64_t>{1, 12, 7, 7});
  const KernelModule module = unroll_to_kernels(graph, LoweringOptions{});
  const GemmKernel& k = gemm(module, "Conv_DP");
  CHECK(k.groups == 6);
  CHECK(mkn(k) == Mkn{49, 9, 2});
  // SCALE-Sim matches "DP" case-sensitively.
  CHECK(graph.ops[1].attr_int("groups", 1) == 1);
  CHECK(graph_macs(graph) == 2 * 49 * 9 * 2 * 6);
}

TEST_CASE("int8 scales and weight seeds are those of the same layer in the model format",
          "[scalesim]") {
  const Graph csv = parse("c, 8, 8, 3, 3, 3, 4, 1,\n");
  const Graph yaml = parse_model_yaml(
      "inputs:\n  c.ifmap: [1, 3, 8, 8]\nlayers:\n  - conv: {name: c, out_channels: 4, kernel: "
      "3, bias: false}\n",
      "m.yaml");
  for (const char* name : {"c.ifmap", "c.w", "c"}) {
    INFO(name);
    CHECK(value(csv, name).dtype == DType::Int8);
    CHECK(value(csv, name).shape == value(yaml, name).shape);
    CHECK(value(csv, name).scale == value(yaml, name).scale);
    CHECK(value(csv, name).seed == value(yaml, name).seed);
  }
  CHECK(value(csv, "c.w").seed == seed_for("c.w", 1));

  const Graph gemm_csv = parse_scalesim_topology("Layer, M, N, K,\ng, 16, 8, 32,\n", "t.csv");
  const Graph gemm_yaml = parse_model_yaml(
      "inputs:\n  g.ifmap: [16, 32]\nlayers:\n  - linear: {name: g, out_features: 8, bias: "
      "false}\n",
      "m.yaml");
  for (const char* name : {"g.ifmap", "g.w", "g"}) {
    INFO(name);
    CHECK(value(gemm_csv, name).shape == value(gemm_yaml, name).shape);
    CHECK(value(gemm_csv, name).scale == value(gemm_yaml, name).scale);
    CHECK(value(gemm_csv, name).seed == value(gemm_yaml, name).seed);
  }
}

TEST_CASE("options: the element type, the seed, a forced layout", "[scalesim]") {
  ScaleSimOptions bf16;
  bf16.type = DType::BF16;
  bf16.seed = 7;
  const Graph graph = parse("c, 8, 8, 3, 3, 3, 4, 1,\n", bf16);
  for (const Value& v : graph.values) {
    INFO(v.name);
    CHECK(v.dtype == DType::BF16);
    CHECK(v.scale == 0);
  }
  CHECK(value(graph, "c.w").seed == seed_for("c.w", 7));

  // SCALE-Sim never reads the header: told the layout, neither does tpusim. This header has
  // M, K, N, but the columns are read as SCALE-Sim reads them: M, N, K.
  ScaleSimOptions gemm;
  gemm.format = TopologyFormat::Gemm;
  const Graph forced = parse_scalesim_topology("Layer, M, K, N,\ng, 16, 8, 32,\n", "t.csv", gemm);
  CHECK(value(forced, "g").shape == std::vector<int64_t>{16, 8});
  CHECK(value(forced, "g.ifmap").shape == std::vector<int64_t>{16, 32});
  ScaleSimOptions conv;
  conv.format = TopologyFormat::Conv;
  CHECK(parse_scalesim_topology("name, h, w, r, s, c, n, stride,\nc, 8, 8, 3, 3, 3, 4, 1,\n",
                                "t.csv", conv)
            .ops.size() == 1);
}
