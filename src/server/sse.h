// Server-sent events (text/event-stream) framing for the streaming routes.
//
//   data: {"id":"chatcmpl-1",...}\n\n      one event per JSON chunk (compact JSON has no raw newlines)
//   : keep-alive\n\n                       comment (clients ignore it; used to notice a gone client)
//   data: [DONE]\n\n                       the end of an OpenAI stream
//
// SseParser is the client side (tests, tools): it accepts "\n", "\r\n" or "\r" line ends, joins several
// data lines of one event with "\n", ignores comments and fields other than data. Not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace frugal {

// "data: <payload>\n\n". payload must not contain '\n' or '\r' (checked).
std::string sse_data(std::string_view payload);
inline std::string sse_done() { return "data: [DONE]\n\n"; }
// ": <text>\n\n" (text without line breaks).
std::string sse_comment(std::string_view text);

class SseParser {
 public:
  // Feeds bytes in any split; complete events become available through take().
  void feed(std::string_view bytes);
  // The data of every event completed so far (in order), removed from the parser.
  std::vector<std::string> take();

 private:
  void line(std::string_view l);
  std::string buf_;
  std::string data_;
  bool has_data_ = false;
  bool last_was_cr_ = false;
  std::vector<std::string> events_;
};

}  // namespace frugal
