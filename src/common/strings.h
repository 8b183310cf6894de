// Byte-string helpers with Redis's exact semantics: integer and float parsing and formatting,
// case-insensitive comparison, glob matching.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv {

// Redis's string2ll: an optional '-', then digits without leading zeros ("0" alone is fine), no
// spaces, no '+', and the value fits in int64. Returns false otherwise.
bool parse_int64(std::string_view s, int64_t* out);
// The same for unsigned values (no '-').
bool parse_uint64(std::string_view s, uint64_t* out);
// Redis's getLongDoubleFromObject: strtold on the whole string, no leading space, no NaN, no
// overflow to infinity (an explicit "inf" is accepted).
bool parse_long_double(std::string_view s, long double* out);
// Redis's getDoubleFromObject: the same with double precision.
bool parse_double(std::string_view s, double* out);

// Writes the decimal form of v into buf (at least 21 bytes); returns the length.
size_t format_int64(char* buf, int64_t v);
std::string int64_to_string(int64_t v);
// Redis's ld2string(LD_STR_HUMAN): %.17Lf with trailing zeros trimmed; "inf"/"-inf".
std::string format_long_double_human(long double v);
// Redis's RESP3 double / addReplyDouble form: "%.17g", "inf", "-inf", "nan".
std::string format_double(double v);

bool equals_nocase(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// Redis's stringmatchlen: glob-style matching with * ? [a-z] [^x] and backslash escapes.
bool glob_match(std::string_view pattern, std::string_view str, bool nocase = false);

// Redis's memtoull: "100", "10kb", "1mb", "1gb", "1k" (1000), "1m"... Returns false on garbage.
bool parse_memory(std::string_view s, uint64_t* out);

// Redis's sdssplitargs: splits a line into arguments, honouring "double quotes" with
// \n \r \t \b \a \\ \" \xHH escapes and 'single quotes' with \' escapes. Returns false on
// unbalanced quotes (or a closing quote not followed by a space). Used for inline requests and
// config files.
bool split_args(std::string_view line, std::vector<std::string>* out);

}  // namespace ringkv
