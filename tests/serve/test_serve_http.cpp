// `resnet serve` end to end over HTTP: every endpoint, every error status, /classify
// against `resnet predict`, and the answers against the library run in this process.

#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "resnet/data/image_codec.h"
#include "serve/serve_process.h"

namespace resnet::testing {
namespace {

using nlohmann::json;

class ServeHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    files_ = new ModelFiles(make_model_files("http"));
    // The checkpoint as ONNX with a fixed 16x16 input, as `resnet export --size 16` writes it.
    onnx_ = (files_->dir / "small.onnx").string();
    Model::load(files_->f32).export_onnx(onnx_, 16);
    server_ = new ServeProcess("--model " + files_->f32 + " --model q=" + files_->int8 +
                               " --model onnx=" + onnx_ +
                               " --max-batch 4 --max-body-mb 1 --log-requests");
  }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(files_->dir);
    delete files_;
  }
  void SetUp() override { ASSERT_TRUE(server_->started()) << server_->log(); }

  static httplib::Result post(const std::string& path, const std::string& body,
                              const std::string& type = "application/json") {
    return server_->client().Post(path.c_str(), body, type.c_str());
  }
  static httplib::Result get(const std::string& path) {
    return server_->client().Get(path.c_str());
  }

  // The status is `status` and the body one {"error": "..."} holding every fragment.
  static void expect_error(const httplib::Result& r, int status,
                           const std::vector<std::string>& fragments) {
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body);
    ASSERT_TRUE(j.is_object() && j.size() == 1 && j.contains("error")) << r->body;
    for (const std::string& f : fragments)
      EXPECT_NE(j["error"].get<std::string>().find(f), std::string::npos)
          << "missing '" << f << "' in " << r->body;
  }

  static ModelFiles* files_;
  static ServeProcess* server_;
  static std::string onnx_;
};
ModelFiles* ServeHttp::files_ = nullptr;
std::string ServeHttp::onnx_;
ServeProcess* ServeHttp::server_ = nullptr;

TEST_F(ServeHttp, HealthReadinessAndServerMetadata) {
  auto live = get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(json::parse(live->body)["live"], true);
  auto ready = get("/v2/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(json::parse(ready->body)["ready"], true);
  auto server = get("/v2");
  ASSERT_TRUE(server);
  EXPECT_EQ(json::parse(server->body)["name"], "resnet");
}

TEST_F(ServeHttp, ModelMetadataAndReadiness) {
  auto r = get("/v2/models/small");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json m = json::parse(r->body);
  EXPECT_EQ(m["name"], "small");  // the file's stem
  EXPECT_EQ(m["inputs"][0]["name"], "input");
  EXPECT_EQ(m["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(m["inputs"][0]["shape"], json::parse("[-1, 3, 16, 16]"));
  EXPECT_EQ(m["outputs"][0]["name"], "output");
  EXPECT_EQ(m["outputs"][0]["shape"], json::parse("[-1, 10]"));
  EXPECT_EQ(m["parameters"]["dtype"], "f32");
  EXPECT_EQ(m["parameters"]["classify"], true);
  const json q = json::parse(get("/v2/models/q")->body);
  EXPECT_EQ(q["parameters"]["dtype"], "int8") << "a quantized checkpoint serves in int8";
  // An ONNX file fixing 16x16 is served at that size; ImageNet's preprocessing, its
  // default (it records no recipe), gives 224x224, so it has no /classify, and says why.
  const json o = json::parse(get("/v2/models/onnx")->body);
  EXPECT_EQ(o["inputs"][0]["shape"], json::parse("[-1, 3, 16, 16]"));
  EXPECT_EQ(o["parameters"]["classify"], false);
  EXPECT_NE(o["parameters"]["classify_refusal"].get<std::string>().find("224x224"),
            std::string::npos);
  expect_error(post("/v2/models/onnx/classify", "x", "image/png"), 400, {"/classify", "/infer"});
  auto ready = get("/v2/models/q/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(json::parse(ready->body)["ready"], true);
}

TEST_F(ServeHttp, InferAnswersAsTheLibraryDoes) {
  for (const auto& [name, path, precision] : {std::tuple{"small", files_->f32, Precision::f32},
                                              {"q", files_->int8, Precision::int8},
                                              {"onnx", onnx_, Precision::f32}}) {
    const Tensor x = test_images(3, files_->image, 5);
    auto r = post(std::string("/v2/models/") + name + "/infer", infer_body(x, "req-1"));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["model_name"], name);
    EXPECT_EQ(j["id"], "req-1");
    EXPECT_EQ(j["outputs"][0]["datatype"], "FP32");
    infer::CompiledModel engine = Model::load(path).compile(precision);
    const Tensor want = engine.run(x);
    const Tensor got = response_tensor(r->body);
    ASSERT_EQ(got.shape(), (Shape{3, 10}));
    EXPECT_LE(relative_diff(got, want), 1e-6) << name;
  }
}

TEST_F(ServeHttp, BinaryTensorDataAnswersAsJsonDoes) {
  const Tensor x = test_images(2, files_->image, 8);
  const std::string head = json{{"inputs",
                                 {{{"name", "input"},
                                   {"datatype", "FP32"},
                                   {"shape", x.shape()},
                                   {"parameters", {{"binary_data_size", x.nbytes()}}}}}}}
                               .dump();
  const std::string body = head + std::string(reinterpret_cast<const char*>(x.f32()), x.nbytes());
  httplib::Headers headers = {{"Inference-Header-Content-Length", std::to_string(head.size())}};
  auto binary =
      server_->client().Post("/v2/models/small/infer", headers, body, "application/octet-stream");
  ASSERT_TRUE(binary);
  ASSERT_EQ(binary->status, 200) << binary->body;
  auto text = post("/v2/models/small/infer", infer_body(x));
  ASSERT_TRUE(text);
  EXPECT_EQ(relative_diff(response_tensor(binary->body), response_tensor(text->body)), 0.0);
}

TEST_F(ServeHttp, ClassifyMatchesResnetPredict) {
  // A 40x30 RGB PNG: the checkpoint's recipe resizes it to 16x16 and normalizes it.
  std::vector<uint8_t> pixels(3 * 30 * 40);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37 % 251);
  const std::string png = (files_->dir / "photo.png").string();
  data::write_png(png, pixels.data(), {3, 30, 40});
  auto r = post("/v2/models/small/classify?top_k=3", slurp(png), "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json got = json::parse(r->body);
  const CliResult predict = run_cli("predict --model " + files_->f32 + " --top-k 3 --json " + png);
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  const json want = json::parse(predict.out)["predictions"][0]["top"];
  EXPECT_EQ(got["preprocess"], "checkpoint");
  ASSERT_EQ(got["top"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got["top"][i]["class"], want[i]["class"]);
    EXPECT_EQ(got["top"][i]["index"], want[i]["index"]);
    EXPECT_NEAR(got["top"][i]["probability"].get<double>(), want[i]["probability"].get<double>(),
                1e-6);
  }
}

TEST_F(ServeHttp, BadRequestsAre400WithTheReason) {
  const std::string infer = "/v2/models/small/infer";
  expect_error(post(infer, "{\"inputs\": ["), 400, {"expected JSON"});
  expect_error(post(infer, "[]"), 400, {"expected a JSON object"});
  json wrong_type = json::parse(infer_body(test_images(1, files_->image, 1)));
  wrong_type["inputs"][0]["datatype"] = "FP16";
  expect_error(post(infer, wrong_type.dump()), 400, {"datatype", "FP32", "FP16"});
  const Tensor small = test_images(1, {3, 8, 8}, 1);
  expect_error(post(infer, infer_body(small)), 400, {"shape", "[N, 3, 16, 16]", "[1,3,8,8]"});
  json lying = json::parse(infer_body(test_images(1, files_->image, 1)));
  lying["inputs"][0]["shape"] = {4, 3, 16, 16};  // claims 4 images, holds 1
  expect_error(post(infer, lying.dump()), 400, {"expected 3072 numbers", "got 768"});
  json huge = lying;
  huge["inputs"][0]["shape"] = {1000000000, 3, 16, 16};
  expect_error(post(infer, huge.dump()), 400, {"--max-batch"});
  expect_error(post(infer, infer_body(test_images(5, files_->image, 1))), 400, {"--max-batch"});
  expect_error(post("/v2/models/small/classify", "not an image", "image/png"), 400,
               {"request body", "PNG or JPEG"});
  expect_error(post("/v2/models/small/classify?top_k=0", "x", "image/png"), 400, {"top_k"});
}

TEST_F(ServeHttp, UnknownModelsAndRoutesAre404) {
  expect_error(get("/v2/models/nope"), 404, {"nope", "small", "q"});
  expect_error(get("/v2/models/nope/ready"), 404, {"nope"});
  expect_error(post("/v2/models/nope/infer", infer_body(test_images(1, files_->image, 1))), 404,
               {"nope"});
  expect_error(post("/v2/models/nope/classify", "x", "image/png"), 404, {"nope"});
  expect_error(get("/v3/whatever"), 404, {"no route", "/v2/models/NAME/infer"});
}

TEST_F(ServeHttp, BodiesOverTheLimitAre413) {
  const std::string big(1024 * 1024 + 1, ' ');
  expect_error(post("/v2/models/small/infer", big), 413, {"--max-body-mb", "1048577"});
}

TEST_F(ServeHttp, MetricsCountRequestsBatchesAndQueues) {
  ASSERT_EQ(post("/v2/models/small/infer", infer_body(test_images(2, files_->image, 3)))->status,
            200);
  post("/v2/models/small/infer", "{");
  auto r = get("/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  for (const char* line :
       {R"(resnet_serve_requests_total{model="small",endpoint="infer",code="200"})",
        R"(resnet_serve_requests_total{model="small",endpoint="infer",code="400"})",
        R"(resnet_serve_request_duration_seconds_bucket{model="small",le="+Inf"})",
        R"(resnet_serve_batch_size_bucket{model="small",le="2"})",
        R"(resnet_serve_inference_duration_seconds_count{model="small"})",
        R"(resnet_serve_queue_depth{model="q"} 0)"})
    EXPECT_NE(r->body.find(line), std::string::npos) << line << "\n" << r->body;
}

TEST_F(ServeHttp, APortInUseIsAnErrorNotASharedPort) {
  const CliResult r =
      run_cli("serve --model " + files_->f32 + " --port " + std::to_string(server_->port()));
  expect_clean_failure(r, {"--port " + std::to_string(server_->port()), "Address already in use"});
}

TEST_F(ServeHttp, LogRequestsWritesOneJsonLinePerRequest) {
  ASSERT_EQ(get("/v2/health/live?probe=log")->status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the line follows the answer
  bool found = false;
  std::istringstream lines(server_->log());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    const json j = json::parse(line);  // every such line is one JSON object
    if (j.value("path", "") == "/v2/health/live" && j.value("status", 0) == 200) {
      found = true;
      for (const char* key : {"time", "remote", "method", "model", "ms", "bytes_in", "bytes_out"})
        EXPECT_TRUE(j.contains(key)) << key << " in " << line;
    }
  }
  EXPECT_TRUE(found) << server_->log();
}

}  // namespace
}  // namespace resnet::testing
