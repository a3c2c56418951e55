// Placeholder so the frugal_compress library has a source until quantize/prune/perplexity land.
namespace frugal {}
