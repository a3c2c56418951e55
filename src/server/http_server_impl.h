// Internals of HttpServer shared by http_server.cpp (setup, small routes, errors) and
// http_generate.cpp (the generation path). Not part of the server's API.
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "server/http_server.h"
#include "server/openai_api.h"

namespace frugal {

struct HttpServerImpl {
  HttpServerDeps deps;
  HttpServerOptions opt;
  ServerMetrics* metrics = nullptr;
  std::atomic<bool>* draining = nullptr;
  httplib::Server svr;
  RateLimiter limiter;
  int64_t created_unix = 0;
  std::atomic<bool> stopping{false};

  std::mutex id_mu;
  uint64_t id_state = 0;  // splitmix64 state for response ids

  std::mutex idle_mu;
  std::condition_variable idle_cv;
  int64_t in_flight = 0;  // generation requests between admission and their last byte

  // http_server.cpp
  void setup_routes();
  std::string next_id(const char* prefix);
  // The key for a request: Ok with *key = the matching key (null when the server is open), or 401.
  std::optional<ApiError> authenticate(const httplib::Request& req, const ApiKey** key) const;
  void enter();  // in_flight++
  void leave();  // in_flight-- and wake wait_idle()

  // http_generate.cpp
  void handle_generate(ApiRoute route, const httplib::Request& req, httplib::Response& res);
};

// Writes the OpenAI error envelope with e.http_status.
void send_error(httplib::Response& res, const ApiError& e);
// Errors of other kinds than invalid_request_error.
ApiError api_error(int status, std::string type, std::string message, std::string code = "");

}  // namespace frugal
