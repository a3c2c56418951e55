#include "server/sse.h"

#include "base/check.h"

namespace frugal {

std::string sse_data(std::string_view payload) {
  FRUGAL_CHECK(payload.find_first_of("\r\n") == std::string_view::npos);
  std::string out;
  out.reserve(payload.size() + 8);
  out += "data: ";
  out += payload;
  out += "\n\n";
  return out;
}

std::string sse_comment(std::string_view text) {
  FRUGAL_CHECK(text.find_first_of("\r\n") == std::string_view::npos);
  return ": " + std::string(text) + "\n\n";
}

void SseParser::feed(std::string_view bytes) {
  for (char c : bytes) {
    if (c == '\n' && last_was_cr_) {  // the \n of a \r\n pair: the line already ended at \r
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      line(buf_);
      buf_.clear();
    } else {
      buf_ += c;
    }
  }
}

void SseParser::line(std::string_view l) {
  if (l.empty()) {  // blank line: dispatch
    if (has_data_) events_.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (l[0] == ':') return;  // comment
  const size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (field != "data") return;
  if (has_data_) data_ += '\n';
  data_ += value;
  has_data_ = true;
}

std::vector<std::string> SseParser::take() {
  std::vector<std::string> out;
  out.swap(events_);
  return out;
}

}  // namespace frugal
