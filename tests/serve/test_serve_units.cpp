// The server's parts that need no network: batch chunking, the KServe request checks and
// the Prometheus text.

#include <gtest/gtest.h>

#include <string>

#include "serve/batcher.h"
#include "serve/kserve.h"
#include "serve/metrics.h"

namespace resnet::serve {
namespace {

TEST(ServeChunks, PowersOfTwoUpToMaxBatch) {
  EXPECT_EQ(chunk_sizes(1, 16), (std::vector<int64_t>{1}));
  EXPECT_EQ(chunk_sizes(16, 16), (std::vector<int64_t>{16}));
  EXPECT_EQ(chunk_sizes(13, 16), (std::vector<int64_t>{8, 4, 1}));
  EXPECT_EQ(chunk_sizes(12, 12), (std::vector<int64_t>{12}));
  EXPECT_EQ(chunk_sizes(11, 12), (std::vector<int64_t>{8, 2, 1}));
  EXPECT_EQ(chunk_sizes(5, 1), (std::vector<int64_t>{1, 1, 1, 1, 1}));
}

ServedModel tiny_model() {
  ServedModel m;
  m.name = "tiny";
  m.input_name = "input";
  m.output_name = "output";
  m.image_shape = {1, 2, 2};
  m.output_shape = {3};
  return m;
}

// The HTTP status and message of parsing `body`, or 200 when it parses.
std::pair<int, std::string> parse_status(const std::string& body) {
  try {
    parse_infer_request(body, tiny_model(), 4);
    return {200, ""};
  } catch (const HttpError& e) {
    return {e.status, e.what()};
  }
}

TEST(ServeRequest, ParsesFlatAndNestedData) {
  const InferRequest flat = parse_infer_request(
      R"({"id":"a","inputs":[{"name":"input","datatype":"FP32","shape":[1,1,2,2],"data":[1,2,3,4.5]}]})",
      tiny_model(), 4);
  EXPECT_EQ(flat.id, "a");
  ASSERT_EQ(flat.images.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_FLOAT_EQ(flat.images.f32()[3], 4.5f);
  const InferRequest nested = parse_infer_request(
      R"({"inputs":[{"name":"input","datatype":"FP32","shape":[2,1,2,2],"data":[[[[1,2],[3,4]]],[[[5,6],[7,8]]]]}]})",
      tiny_model(), 4);
  ASSERT_EQ(nested.images.shape(), (Shape{2, 1, 2, 2}));
  EXPECT_FLOAT_EQ(nested.images.f32()[7], 8.0f);
}

TEST(ServeRequest, RefusesEachMistakeWithAMessage) {
  const std::string good_input = R"("name":"input","datatype":"FP32")";
  std::string many_values = "1";
  for (int i = 0; i < 10000; ++i) many_values += ",1";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "expected JSON"},
      {"[1]", "expected a JSON object"},
      {"{}", "\"inputs\""},
      {R"({"inputs":[]})", "got 0 inputs"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,1,2,2],"data":[1,2,3,4]}]})",
       "inputs[0].name"},
      {R"({"inputs":[{"name":"input","datatype":"INT8","shape":[1,1,2,2],"data":[1,2,3,4]}]})",
       "\"FP32\""},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[1,1,2,3],"data":[1,2,3,4,5,6]}]})",
       "inputs[0].shape: expected [N, 1, 2, 2]"},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[5,1,2,2],"data":[]}]})", "--max-batch"},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[1,1,2,2],"data":[1,2,3]}]})",
       "expected 4 numbers"},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[1,1,2,2],"data":[1,2,3,"x"]}]})",
       "expected numbers"},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[1,1,2,2],"data":[1,2,3,1e300]}]})",
       "finite FP32"},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[1,1,2,2],"data":[[[[[1]]]],2,3,4]}]})",
       "nested at most 4 deep"},
      {"{\"inputs\":[{" + good_input +
           R"(,"shape":[1,1,2,2],"data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}]})",
       "at most 16 numbers"},
      {"{\"inputs\":[{" + good_input + R"(,"shape":[1,1,2,2],"data":[1,2,{"a":3},4]}]})",
       "got an object"},
      {"{\"x\":" + std::string(100, '[') + std::string(100, ']') + "}", "nested at most 64"},
      {"{\"x\":[" + many_values + "]}", "at most 10000 JSON values"},
      {"{\"inputs\":[{" + good_input +
           R"(,"shape":[1,1,2,2],"data":[1,2,3,4]}],"outputs":[{"name":"y"}]})",
       "outputs"},
  };
  for (const auto& [body, fragment] : cases) {
    const auto [status, message] = parse_status(body);
    EXPECT_EQ(status, 400) << body;
    EXPECT_NE(message.find(fragment), std::string::npos) << body << " -> " << message;
  }
}

TEST(ServeRequest, ReadsBinaryTensorData) {
  const std::string head =
      R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,1,2,2],"parameters":{"binary_data_size":16}}]})";
  const float values[4] = {1.5f, -2.0f, 3.0f, 0.25f};
  const std::string body = head + std::string(reinterpret_cast<const char*>(values), 16);
  const InferRequest r = parse_infer_request(body, tiny_model(), 4, head.size());
  ASSERT_EQ(r.images.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(r.images.f32()[3], 0.25f);
  auto status = [&](const std::string& b, size_t length) {
    try {
      parse_infer_request(b, tiny_model(), 4, length);
      return std::string("parsed");
    } catch (const HttpError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_NE(status(body.substr(0, body.size() - 1), head.size()).find("expected 16 bytes"),
            std::string::npos);
  EXPECT_NE(status(body, body.size() + 1).find("Inference-Header-Content-Length"),
            std::string::npos);
}

TEST(ServeResponse, WritesShortestFloats) {
  Tensor out = Tensor::from_vector({1, 3}, {0.1f, -2.0f, 1e-8f});
  const std::string r = infer_response(tiny_model(), "q", out);
  EXPECT_NE(r.find(R"("data":[0.1,-2,1e-08])"), std::string::npos) << r;
  EXPECT_NE(r.find(R"("shape":[1,3])"), std::string::npos) << r;
  EXPECT_NE(r.find(R"("id":"q")"), std::string::npos) << r;
}

TEST(ServeMetrics, RendersPrometheusText) {
  Metrics m({"a"}, 16);
  m.count_request("a", "infer", 200, 0.003);
  m.count_request("", "other", 404, 0.0);
  m.observe_batch("a", 5, 0.01);
  m.set_queue_depth("a", 2);
  const std::string t = m.render();
  for (const char* line : {
           R"(resnet_serve_requests_total{model="a",endpoint="infer",code="200"} 1)",
           R"(resnet_serve_requests_total{model="",endpoint="other",code="404"} 1)",
           R"(resnet_serve_request_duration_seconds_bucket{model="a",le="0.005"} 1)",
           R"(resnet_serve_batch_size_bucket{model="a",le="4"} 0)",
           R"(resnet_serve_batch_size_bucket{model="a",le="8"} 1)",
           R"(resnet_serve_batch_size_bucket{model="a",le="+Inf"} 1)",
           R"(resnet_serve_inference_duration_seconds_count{model="a"} 1)",
           R"(resnet_serve_queue_depth{model="a"} 2)",
       })
    EXPECT_NE(t.find(line), std::string::npos) << line << "\n" << t;
}

}  // namespace
}  // namespace resnet::serve
