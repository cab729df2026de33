"""Built-in transports: native HTTP (``http``), the s5cmd binary (``s5cmd``) and a local mirror (``mirror``)."""
