// StopMatcher: finds stop strings in generated text that arrives in pieces (a stop string may span
// several tokens) and holds back text that could still become one, so a stop string is never emitted.
//
//   stops {"\n\n", "END"}:  push("Hello\n") -> "Hello" ("\n" held)   push("\nmore") -> stopped, emits ""
//                           push("EN") -> "" (held)                    push("X") -> "ENX"
//
// Thread-safety: none (one per sequence).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace frugal {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds text; returns what can be emitted now. After a stop string is found, stopped() is true, the
  // returned text is everything before it, and later pushes return "".
  std::string push(std::string_view text);
  // The held-back tail (when generation ends for another reason).
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string that matched

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace frugal
