"""Teams compiled to LangGraph: topologies, run, stream, resume and fork."""
