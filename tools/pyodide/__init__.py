"""Run shelfedge's packages inside Pyodide under Node: the wheels it needs and the Node runner."""
