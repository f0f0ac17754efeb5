# wm: small Unix filters for latent video world models.
#   make            build every filter into bin/
#   make test       build and run the whole suite (no GPU needed)
#   make demo       set up, build and run the main job on the default model
#   make bench-io   stream I/O benchmark (docs/benchmarks.md)
#   make bench-synth  wm-synth frames/s on one core (docs/benchmarks.md)
#   make bench-tokenizer  wm-encode-latent + wm-decode-frame against PyTorch (docs/benchmarks.md)
#   make bench-step   wm-step on the CPU against PyTorch (docs/benchmarks.md)
#   make bench-step-gpu  wm-step on a CUDA device against PyTorch (needs a GPU)
#   make bench-workers  batch scoring clips/s with 1, 2 and 4 wm-workers against one pipeline (docs/benchmarks.md)
#   make model      retrain models/wm-default.safetensors from scratch (about 45 minutes; docs/tokenizer.md, docs/model.md)
#   make fuzz, fuzz-build, lint, valgrind  hardening checks (docs/benchmarks.md, Reliability)
#   make install PREFIX=/usr/local
# Filters are discovered: filters/wm-NAME.c becomes bin/wm-NAME, linked with
# libwm (libwm/*.c).  Tests are discovered by tests/run.
# -ffp-contract=off: wm-synth promises the same bytes on every machine, and
# fusing a*b+c into one rounding (FMA) where a CPU has it would break that.

PREFIX ?= /usr/local
CC ?= cc
PKGS := libavformat libavcodec libswscale libavutil libzmq msgpack openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -ffp-contract=off $(WARN) $(CFLAGS) -Ilibwm $(PKG_CFLAGS) -MMD -MP
LIBS := $(PKG_LIBS) -lm -lpthread

BUILD := build
LIB_SRC := $(wildcard libwm/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
FILTER_SRC := $(wildcard filters/wm-*.c)
FILTERS := $(FILTER_SRC:filters/%.c=bin/%)
UNIT_SRC := $(wildcard tests/unit_*.c)
UNITS := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test demo install clean bench-io bench-physics bench-zmq bench-synth fuzz fuzz-build lint bench-tokenizer model \
        bench-step bench-step-gpu bench-workers
.SECONDARY:
all: $(FILTERS) $(UNITS) $(BENCH_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libwm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

bin/%: $(BUILD)/filters/%.o $(BUILD)/libwm.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) $< $(BUILD)/libwm.a $(LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libwm.a
	$(CC) $(LDFLAGS) $< $(BUILD)/libwm.a $(LIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libwm.a
	$(CC) $(LDFLAGS) $< $(BUILD)/libwm.a $(LIBS) -o $@

# The CUDA backend (kernels/*.cu, behind libwm/wm_gpu.h) is always built,
# for sm_80 and sm_90 plus PTX for later cards, and linked into bin/wm-step
# alone (cudart, found beside nvcc, with an rpath; cuBLAS is opened from
# there when a model goes on a device), so the other filters stay free of
# CUDA; tests/unit_gpu links it the same way.  wm-step runs without a GPU:
# it falls back to the CPU.
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
CUDA_LIB ?= $(abspath $(dir $(NVCC))../lib64)
CUDA_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCC_FLAGS := -O2 -std=c++17 $(CUDA_ARCH) -Ilibwm -DWM_CUDA_LIB='"$(CUDA_LIB)"' -Werror all-warnings \
              -Xcompiler -Wall,-Wextra,-Werror
KERNEL_SRC := $(wildcard kernels/*.cu)
KERNEL_OBJ := $(KERNEL_SRC:%.cu=$(BUILD)/%.o)
CUDA_LIBS := -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcudart

$(BUILD)/kernels/%.o: kernels/%.cu libwm/wm_gpu.h libwm/wm_error.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

LINK_CUDA = $(CC) $(LDFLAGS) $< $(KERNEL_OBJ) $(BUILD)/libwm.a $(LIBS) $(CUDA_LIBS) -lstdc++ -o $@

bin/wm-step: $(BUILD)/filters/wm-step.o $(KERNEL_OBJ) $(BUILD)/libwm.a
	@mkdir -p bin
	$(LINK_CUDA)

$(BUILD)/tests/unit_gpu: $(BUILD)/tests/unit_gpu.o $(KERNEL_OBJ) $(BUILD)/libwm.a
	$(LINK_CUDA)

test: all
	tests/run

# libFuzzer targets (tests/fuzz/fuzz_NAME.c, seed corpus tests/fuzz/corpus_NAME):
# make fuzz runs each for FUZZ_SECONDS; crashes land in tests/fuzz/out/.
# FUZZ_TARGETS picks some: make fuzz FUZZ_TARGETS=fuzz_safetensors.
FUZZ_SECONDS ?= 600
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZERS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Ilibwm $(PKG_CFLAGS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard libwm/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< $(LIB_SRC) $(LIBS) -o $@

fuzz-build: $(FUZZERS)

fuzz: $(FUZZERS)
	@for t in $(FUZZERS); do n=$$(basename $$t); c=tests/fuzz/corpus_$${n#fuzz_}; \
	  mkdir -p tests/fuzz/out/$$n; echo "== $$n for $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=tests/fuzz/out/$$n/ \
	    tests/fuzz/out/$$n $$c > tests/fuzz/out/$$n.log 2>&1; rc=$$?; \
	  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|^Done' tests/fuzz/out/$$n.log; \
	  [ $$rc -eq 0 ] || { echo "$$n found a crash: see tests/fuzz/out/$$n/"; exit 1; }; done

# Static analysis with the checked-in configuration (.clang-tidy, cppcheck flags here).
LINT_SRC ?= $(LIB_SRC) $(FILTER_SRC) $(BENCH_SRC)
lint:
	cppcheck --std=c11 --enable=warning,performance,portability --inline-suppr --quiet \
	  --error-exitcode=1 -Ilibwm -D_GNU_SOURCE $(LINT_SRC)
	clang-tidy --quiet $(LINT_SRC) -- -std=c11 -D_GNU_SOURCE -Ilibwm $(PKG_CFLAGS)

# Valgrind memcheck over the main pipeline on a tiny input (about a minute).
.PHONY: valgrind
valgrind: all
	bash tests/valgrind.sh

demo: all
	scripts/demo.sh

bench-io: all
	bench/bench-io.sh

bench-zmq: all
	bench/bench-zmq.sh

bench-workers: all
	bench/bench-workers.sh

bench-synth: all
	bench/bench-synth.sh

bench-tokenizer: all
	bench/bench-tokenizer.sh

bench-physics: all
	bench/bench-physics.sh

bench-step: all
	bench/bench-step.sh

bench-step-gpu: all
	bench/bench-step-gpu.sh

bench-horizon: all
	bench/bench-horizon.sh

model: all
	scripts/model-tokenizer.sh
	scripts/model-dynamics.sh
	scripts/model-detector.sh
	scripts/model-prior.sh

# Pipelines go to PREFIX/bin as wm-NAME (pipelines/score: wm-score) with
# their names in messages and help rewritten; they find the filters beside
# them, and the filters find the model in PREFIX/share/wm.  libwm.a, its
# headers (PREFIX/include/wm) and wm.pc serve programs built against libwm.
WM_VERSION := $(shell sed -n 's/^\#define WM_VERSION "\(.*\)"/\1/p' libwm/wm_proto.h)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/doc/wm \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/wm
	install -m 755 $(FILTERS) $(DESTDIR)$(PREFIX)/bin/
	for p in pipelines/*; do [ -f "$$p" ] && [ -x "$$p" ] || continue; n=wm-$$(basename $$p); \
	  sed 's|pipelines/\([a-z][a-z0-9-]*\)|wm-\1|g' "$$p" > $(DESTDIR)$(PREFIX)/bin/$$n.tmp && \
	  chmod 755 $(DESTDIR)$(PREFIX)/bin/$$n.tmp && mv $(DESTDIR)$(PREFIX)/bin/$$n.tmp $(DESTDIR)$(PREFIX)/bin/$$n || exit 1; done
	install -m 644 $(BUILD)/libwm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 libwm/*.h $(DESTDIR)$(PREFIX)/include/wm/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(WM_VERSION)|' -e 's|@REQUIRES@|$(PKGS)|' -e 's|@LDFLAGS@|$(strip $(LDFLAGS))|' libwm/wm.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/wm.pc
	install -m 644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/wm/
	if [ -f models/wm-default.safetensors ]; then install -d $(DESTDIR)$(PREFIX)/share/wm && \
	  install -m 644 models/wm-default.safetensors $(DESTDIR)$(PREFIX)/share/wm/; fi
	for f in $(FILTERS); do n=$$(basename $$f); \
	  scripts/help2man.sh $$f > $(DESTDIR)$(PREFIX)/share/man/man1/$$n.1 || exit 1; done

clean:
	rm -rf $(BUILD) bin

-include $(LIB_OBJ:.o=.d) $(FILTER_SRC:%.c=$(BUILD)/%.d) $(UNIT_SRC:%.c=$(BUILD)/%.d)
