// A parsed RESP2/RESP3 reply as a tree, for tests that pick values out of replies or compare them
// structurally (COMMAND INFO/DOCS, CLIENT, INFO, transactions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/strings.h"

namespace ringkv::testing {

// A parsed RESP2/RESP3 value: its type byte, its text (simple/bulk/error/number) and children
// (aggregates; a map's children alternate key, value).
struct Node {
  char type = 0;
  std::string text;
  std::vector<Node> kids;
  bool operator==(const Node& o) const {
    return type == o.type && text == o.text && kids == o.kids;
  }
  bool operator<(const Node& o) const {
    return std::tie(type, text, kids) < std::tie(o.type, o.text, o.kids);
  }
};

// Parses the value at `pos`; returns its end, or npos while incomplete.
inline size_t parse_at(std::string_view s, size_t pos, Node* out) {
  if (pos >= s.size()) return std::string_view::npos;
  size_t eol = s.find("\r\n", pos);
  if (eol == std::string_view::npos) return eol;
  out->type = s[pos];
  std::string_view line = s.substr(pos + 1, eol - pos - 1);
  size_t after = eol + 2;
  int64_t n = 0;
  switch (out->type) {
    case '$':
    case '=':
    case '!':
      ringkv::parse_int64(line, &n);
      if (n < 0) {
        out->text = "(nil)";
        return after;
      }
      if (after + static_cast<size_t>(n) + 2 > s.size()) return std::string_view::npos;
      out->text = std::string(s.substr(after, static_cast<size_t>(n)));
      return after + static_cast<size_t>(n) + 2;
    case '*':
    case '~':
    case '%':
    case '>': {
      ringkv::parse_int64(line, &n);
      if (n < 0) {
        out->text = "(nil)";
        return after;
      }
      size_t count = static_cast<size_t>(out->type == '%' ? 2 * n : n);
      size_t p = after;
      for (size_t i = 0; i < count; ++i) {
        Node kid;
        p = parse_at(s, p, &kid);
        if (p == std::string_view::npos) return p;
        out->kids.push_back(std::move(kid));
      }
      return p;
    }
    default:
      out->text = std::string(line);
      return after;
  }
}

inline Node parse(std::string_view s) {
  Node n;
  parse_at(s, 0, &n);
  return n;
}

inline std::string encode_node(const Node& n) {
  switch (n.type) {
    case '$':
    case '=':
    case '!':
      if (n.text == "(nil)") return std::string(1, n.type) + "-1\r\n";
      return std::string(1, n.type) + std::to_string(n.text.size()) + "\r\n" + n.text + "\r\n";
    case '*':
    case '~':
    case '%':
    case '>': {
      size_t count = n.type == '%' ? n.kids.size() / 2 : n.kids.size();
      std::string out = std::string(1, n.type) + std::to_string(count) + "\r\n";
      for (const Node& k : n.kids) out += encode_node(k);
      return out;
    }
    default:
      return std::string(1, n.type) + n.text + "\r\n";
  }
}

// The value of `key` in a map (RESP3 '%', or RESP2's flat array of pairs).
inline const Node* field(const Node& map, std::string_view key) {
  for (size_t i = 0; i + 1 < map.kids.size(); i += 2)
    if (map.kids[i].text == key) return &map.kids[i + 1];
  return nullptr;
}

}  // namespace ringkv::testing
