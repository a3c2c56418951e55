// Syntax tree of the Jinja-subset interpreter. One node type; the fields a kind uses are listed beside it.
// Nodes are owned by their parent (unique_ptr); a parsed template owns the root body.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace frugal::jinja {

enum class NodeKind : uint8_t {
  // statements
  kText,        // name = the text
  kComment,     // -
  kIf,          // x = test, body, alt (an elif is one nested kIf in alt)
  kFor,         // x = loop target (kIdent or kTuple), y = iterable (a kSelect filters items), body, alt = else
  kSet,         // x = target (kIdent, kTuple of kIdent, kMember on a namespace), y = value or null: body
  kMacro,       // name, list = parameters (kIdent or kKwarg with default), body
  kCallBlock,   // x = kCall of the macro, list = caller parameters, body = caller body
  kFilterBlock, // x = filter (kIdent or kCall), body
  kBreak,
  kContinue,
  // expressions
  kInt,         // int_value
  kFloat,       // float_value
  kString,      // name = the value
  kIdent,       // name
  kArray,       // list
  kTuple,       // list
  kObject,      // pairs (key expression, value expression)
  kMember,      // x = object, y = property (kIdent / kInt when !flag; any expression or kSlice when flag)
  kSlice,       // x, y, z = start, stop, step (each may be null)
  kCall,        // x = callee, list = arguments (expressions, kKwarg, kSpread, kKwSpread)
  kKwarg,       // name = key, x = value
  kSpread,      // x (*x)
  kKwSpread,    // x (**x)
  kBinary,      // name = operator ("+", "in", "not in", "and", ...), x, y
  kUnary,       // name = "not", "-" or "+", x
  kFilter,      // x = operand, y = filter (kIdent or kCall)
  kTest,        // x = operand, name = test, flag = negated
  kSelect,      // x = value, y = condition ("x if c" without else: undefined when c is false)
  kTernary,     // x = condition, y = if true, z = if false
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

struct Node {
  Node(NodeKind k, uint32_t p) : kind(k), pos(p) {}
  NodeKind kind;
  uint32_t pos;  // byte offset in the template source (error messages)
  bool flag = false;
  int64_t int_value = 0;
  double float_value = 0;
  std::string name;
  NodePtr x, y, z;
  NodeList list, body, alt;
  std::vector<std::pair<NodePtr, NodePtr>> pairs;
};

}  // namespace frugal::jinja
