// The SVG chart writer: well-formed documents, every label present and escaped, degenerate
// data (one point, gaps, log axes) drawn without NaN coordinates, and metrics.csv parsing
// that names the file and line of anything malformed.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "resnet/train/plot_svg.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::Chart;
using train::Series;

// Just enough of an XML checker for our own output: every element closed in order, quoted
// attributes, no raw '<' or '&' in text. Returns "" when fine, else what is wrong.
std::string xml_problem(const std::string& doc) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < doc.size()) {
    if (doc[i] == '&') {
      const size_t semi = doc.find(';', i);
      if (semi == std::string::npos || semi - i > 6) return "raw & at " + std::to_string(i);
      const std::string entity = doc.substr(i, semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" &&
          entity != "&apos;") {
        return "unknown entity " + entity;
      }
      i = semi + 1;
      continue;
    }
    if (doc[i] == '>') return "raw > in text at " + std::to_string(i);
    if (doc[i] != '<') {
      ++i;
      continue;
    }
    if (doc.compare(i, 2, "<?") == 0) {
      const size_t end = doc.find("?>", i);
      if (end == std::string::npos) return "unclosed <?";
      i = end + 2;
      continue;
    }
    // A tag: find its end outside quoted attribute values.
    size_t j = i + 1;
    char quote = 0;
    while (j < doc.size() && (quote || doc[j] != '>')) {
      if (quote && doc[j] == quote)
        quote = 0;
      else if (!quote && (doc[j] == '"' || doc[j] == '\''))
        quote = doc[j];
      else if (!quote && doc[j] == '<')
        return "< inside a tag at " + std::to_string(j);
      ++j;
    }
    if (j >= doc.size()) return "unclosed tag at " + std::to_string(i);
    std::string tag = doc.substr(i + 1, j - i - 1);
    i = j + 1;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) {
        return "</" + name + "> closes " + (open.empty() ? std::string("nothing") : open.back());
      }
      open.pop_back();
    } else if (!tag.empty() && tag.back() == '/') {
      // self-closing
    } else {
      open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  return "";
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

Chart two_series_chart() {
  Chart c;
  c.title = "Loss <per epoch>";
  c.x_label = "epoch";
  c.y_label = "loss & more";
  c.series = {{"train \"A\"", {1, 2, 3, 4}, {2.3, 1.1, 0.7, 0.5}, "", false},
              {"test's", {1, 2, 3, 4}, {2.4, 1.3, 0.9, 0.8}, "#ff7f0e", true}};
  return c;
}

TEST(PlotSvg, CheckerCatchesBrokenXml) {
  EXPECT_EQ(xml_problem("<a><b/></a>"), "");
  EXPECT_NE(xml_problem("<a><b></a>"), "");
  EXPECT_NE(xml_problem("<a>x & y</a>"), "");
  EXPECT_NE(xml_problem("<a>"), "");
}

TEST(PlotSvg, WellFormedWithEveryLabelEscaped) {
  const std::string svg = train::render_svg({two_series_chart(), two_series_chart()}, 2);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960.0\" height=\"320.0\""),
            std::string::npos);
  for (const char* label : {"Loss &lt;per epoch&gt;", ">epoch<", "loss &amp; more",
                            "train &quot;A&quot;", "test&apos;s"}) {
    EXPECT_EQ(count(svg, label), 2u) << label;
  }
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(PlotSvg, GridOfThreePanelsInTwoColumns) {
  const std::string svg =
      train::render_svg({two_series_chart(), two_series_chart(), two_series_chart()}, 2);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("width=\"960.0\" height=\"640.0\""), std::string::npos);
  EXPECT_NE(svg.find("translate(0.0,320.0)"), std::string::npos);
  // Each panel clips to its own area.
  EXPECT_NE(svg.find("id=\"plot-area-2\""), std::string::npos);
}

TEST(PlotSvg, OnePointIsADot) {
  Chart c;
  c.title = "one epoch";
  c.series = {{"train", {1}, {0.5}, "", false}};
  const std::string svg = train::render_svg({c}, 1);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "<circle"), 1u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(PlotSvg, NonFiniteValuesBreakTheLine) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Chart c;
  c.title = "gaps";
  c.series = {{"s", {1, 2, 3, 4, 5, 6}, {1, 2, nan, 3, 4, inf}, "", false}};
  const std::string svg = train::render_svg({c}, 1);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "<path"), 2u);  // 1-2 and 4-5
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(PlotSvg, EmptyChartsAndEmptySeriesStillRender) {
  Chart empty;
  empty.title = "nothing yet";
  Chart blank = empty;
  blank.series = {{"train", {}, {}, "", false}};
  const std::string svg = train::render_svg({empty, blank}, 3);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "nothing yet"), 2u);
}

TEST(PlotSvg, LogAxisTicksAtDecades) {
  Chart c;
  c.title = "gradient norm";
  c.log_y = true;
  c.series = {{"conv1", {0, 1, 2, 3}, {1e-5, 1e-3, 0.2, 40}, "", false},
              {"zero", {0, 1}, {0, -1}, "", false}};  // nothing drawable on a log axis
  const std::string svg = train::render_svg({c}, 1);
  EXPECT_EQ(xml_problem(svg), "");
  for (const char* label : {">1e-05<", ">0.001<", ">0.1<", ">1<", ">10<", ">100<"}) {
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  }
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(PlotSvg, PinnedRange) {
  Chart c;
  c.title = "accuracy";
  c.y_min = 0;
  c.y_max = 100;
  c.series = {{"test", {1, 2}, {91.5, 92.25}, "", false}};
  const std::string svg = train::render_svg({c}, 1);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find(">0<"), std::string::npos);
  EXPECT_NE(svg.find(">100<"), std::string::npos);
}

TEST(PlotSvg, NiceTicksAreOneTwoFive) {
  EXPECT_EQ(train::nice_ticks(0, 1, 5),
            (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(train::nice_ticks(0.3, 9.7, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(train::nice_ticks(1, 30, 6), (std::vector<double>{0, 5, 10, 15, 20, 25, 30}));
  EXPECT_EQ(train::nice_ticks(-120, 380, 3), (std::vector<double>{-200, 0, 200, 400}));
}

TEST(PlotSvg, RefusesBadCharts) {
  Chart c;
  c.title = "t";
  c.series = {{"lopsided", {1, 2, 3}, {1, 2}, "", false}};
  EXPECT_TRAIN_ERROR(train::render_svg({c}, 1), "lopsided", "3", "2");
  EXPECT_TRAIN_ERROR(train::render_svg({two_series_chart()}, 0), "column", "0");
  EXPECT_TRAIN_ERROR(train::render_svg({}, 1), "at least one chart");
  Chart pinned = two_series_chart();
  pinned.y_min = 2;
  pinned.y_max = 1;
  EXPECT_TRAIN_ERROR(train::render_svg({pinned}, 1), "y_min < y_max");
  pinned = two_series_chart();
  pinned.log_y = true;
  pinned.y_min = 0;
  EXPECT_TRAIN_ERROR(train::render_svg({pinned}, 1), "positive");
}

TEST(PlotSvg, XmlEscape) {
  EXPECT_EQ(train::xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

const char* kHeader = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n";

TEST(TrainingCurves, LossAndAccuracyPanels) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.csv");
  write_text(path, std::string(kHeader) +
                       "1,1.25,0.55,1.5,0.5,0.1,12.5\r\n"
                       "2,0.75,0.8,,0.75,0.1,12.0\n"
                       "\n"
                       "3,0.5,0.9,0.6,0.85,0.01,11.9\n");
  const std::vector<Chart> charts = train::training_curves(path);
  ASSERT_EQ(charts.size(), 2u);
  ASSERT_EQ(charts[0].series.size(), 2u);
  EXPECT_EQ(charts[0].series[0].label, "train");
  EXPECT_EQ(charts[0].series[1].label, "test");
  EXPECT_EQ(charts[0].series[0].x, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(charts[0].series[0].y, (std::vector<double>{1.25, 0.75, 0.5}));
  EXPECT_TRUE(std::isnan(charts[0].series[1].y[1]));                    // the empty field: a gap
  EXPECT_EQ(charts[1].series[1].y, (std::vector<double>{50, 75, 85}));  // percent
  const std::string svg = dir.file("curves.svg");
  train::write_svg(svg, charts, 2);
  const std::string written = testing::read_bytes(svg);
  EXPECT_EQ(written, train::render_svg(charts, 2));
  EXPECT_EQ(xml_problem(written), "");
  EXPECT_EQ(written.find("nan"), std::string::npos);
}

TEST(TrainingCurves, HeaderOnlyAndOneEpoch) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.csv");
  write_text(path, kHeader);
  EXPECT_EQ(xml_problem(train::render_svg(train::training_curves(path), 2)), "");
  write_text(path, std::string(kHeader) + "1,1.25,0.55,1.5,0.5,0.1,12.5\n");
  const std::string svg = train::render_svg(train::training_curves(path), 2);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "<circle"), 4u);
}

TEST(TrainingCurves, ColumnsFoundByName) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.csv");
  write_text(path,
             "seconds,lr,test_acc,test_loss,train_acc,train_loss,epoch,grad_norm\n"
             "10,0.1,0.5,1.5,0.55,1.25,1,3.5\n");
  const std::vector<Chart> charts = train::training_curves(path);
  EXPECT_EQ(charts[0].series[0].y, (std::vector<double>{1.25}));
  EXPECT_EQ(charts[1].series[1].y, (std::vector<double>{50}));
}

TEST(TrainingCurves, RefusesMalformedFilesNamingFileAndLine) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.csv");
  EXPECT_TRAIN_ERROR(train::training_curves(path), path);
  write_text(path, "");
  EXPECT_TRAIN_ERROR(train::training_curves(path), path, "empty");
  write_text(path, "epoch,train_loss,train_acc,test_loss,lr,seconds\n");
  EXPECT_TRAIN_ERROR(train::training_curves(path), path + ":1:", "test_acc");
  write_text(path, std::string(kHeader) + "1,1.25,0.55,1.5,0.5,0.1,12.5\n2,0.7,0.8\n");
  EXPECT_TRAIN_ERROR(train::training_curves(path), path + ":3:", "7", "got 3");
  write_text(path, std::string(kHeader) + "1,abc,0.55,1.5,0.5,0.1,12.5\n");
  EXPECT_TRAIN_ERROR(train::training_curves(path), path + ":2:", "train_loss", "'abc'");
  write_text(path, std::string(kHeader) + "1,1.0,0.55x,1.5,0.5,0.1,12.5\n");
  EXPECT_TRAIN_ERROR(train::training_curves(path), path + ":2:", "train_acc", "0.55x");
}

}  // namespace
}  // namespace resnet
