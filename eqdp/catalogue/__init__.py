"""What the command line checks and lists without importing torch: the models' names,
options and sizes, recorded in ``models.json`` (see ``eqdp.catalogue.models``)."""
