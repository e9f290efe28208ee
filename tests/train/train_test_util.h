#pragma once
// Helpers for the training-math tests: fixture paths (tests/fixtures/train, written by
// tools/gen_train_fixtures.py), JSON loading, and a check that a statement throws
// resnet::Error with a telling message.

#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

#include "resnet/core/error.h"

namespace resnet::testing {

inline std::string train_fixture(const std::string& file) {
  return std::string(RESNET_FIXTURE_DIR) + "/train/" + file;
}

inline nlohmann::json read_train_json(const std::string& file) {
  std::ifstream in(train_fixture(file));
  if (!in) throw std::runtime_error("cannot open fixture " + train_fixture(file));
  return nlohmann::json::parse(in);
}

}  // namespace resnet::testing

// Expects `statement` to throw resnet::Error whose one-line message contains each of the
// given strings.
#define EXPECT_TRAIN_ERROR(statement, ...)                                                  \
  do {                                                                                      \
    try {                                                                                   \
      statement;                                                                            \
      ADD_FAILURE() << "expected resnet::Error from " #statement;                           \
    } catch (const ::resnet::Error& resnet_train_error_) {                                  \
      const std::string resnet_train_message_ = resnet_train_error_.what();                 \
      EXPECT_EQ(resnet_train_message_.find('\n'), std::string::npos)                        \
          << "message spans lines: " << resnet_train_message_;                              \
      for (const std::string& resnet_train_needle_ :                                        \
           std::initializer_list<std::string>{__VA_ARGS__}) {                               \
        EXPECT_NE(resnet_train_message_.find(resnet_train_needle_), std::string::npos)      \
            << "message: " << resnet_train_message_ << "\nlacks: " << resnet_train_needle_; \
      }                                                                                     \
    }                                                                                       \
  } while (0)
