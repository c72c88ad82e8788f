# fuzz.mk - builds the libFuzzer targets; `make fuzz` in the top directory
# runs it with srcdir and the library flags configure found.
#
# The src/*.c the targets exercise are compiled again with clang, ASan and
# UBSan and libFuzzer's coverage instrumentation (fuzzer-no-link) into
# fuzz/obj/, archived, and each fuzz/fuzz_NAME.c is linked against that
# archive with -fsanitize=fuzzer into fuzz/fuzz_NAME. Nothing here touches
# the normal (gcc) build: other objects, other directory.
#
# Debian packages: clang and libclang-rt-14-dev (libFuzzer, the sanitizer
# runtimes); see fuzz/README.md.

srcdir ?= .
FUZZ_CC ?= clang
OUT = fuzz
OBJ = $(OUT)/obj

TARGETS = params sigv4 config s3resp image decide strip
SRC = buf crypto status path params sigv4 auth config json probe geom budget http plan s3req img decide \
	strip

SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(SAN) \
	-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror \
	$(FUZZ_DEFS) -I$(srcdir)/src $(INIPARSER_CFLAGS) $(CRYPTO_CFLAGS) $(GM_CFLAGS)
FUZZ_LIBS = $(INIPARSER_LIBS) $(CRYPTO_LIBS) $(GM_LIBS)

BINS = $(TARGETS:%=$(OUT)/fuzz_%)
OBJS = $(SRC:%=$(OBJ)/%.o)

all: $(BINS)

$(OBJ)/%.o: $(srcdir)/src/%.c $(wildcard $(srcdir)/src/*.h)
	@mkdir -p $(OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# fuzz.mk too: a source added to SRC must reach the archive (its object,
# .SECONDARY, would otherwise not be missed).
$(OBJ)/libsrc.a: $(OBJS) $(srcdir)/fuzz/fuzz.mk
	rm -f $@
	ar rcs $@ $(OBJS)

$(OUT)/fuzz_%: $(srcdir)/fuzz/fuzz_%.c $(srcdir)/fuzz/fuzz.h $(OBJ)/libsrc.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(OBJ)/libsrc.a $(FUZZ_LIBS)

clean:
	rm -rf $(OBJ) $(BINS)

.PHONY: all clean
.SECONDARY: $(OBJS)
