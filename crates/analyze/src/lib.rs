//! gantry-analyze: Analyzers that consume layer entries, and the squash of layer reports into image facts.
