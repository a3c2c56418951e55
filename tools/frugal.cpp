// frugal: one binary, subcommands (run, bench, inspect, tokenize, logits).
#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "frugal: not built yet\n");
  return 1;
}
