"""The web page: upload music, watch the performance, download it (`python app.py`).

  jobs.py   what a request does, without the page: the models and pieces offered, the upload
            limits, one generation (`generation.generate_video`) into its own folder of the
            server's temporary folder, and cancelling the jobs of a closed tab.
  page.py   the Gradio page over it: the form, the queue (one generation at a time), the
            progress bar, offline assets, and serving until Ctrl-C or SIGTERM.
app.py makes the temporary folder, before Gradio is imported, and removes it at exit.

Nothing else in the package imports this one.
"""
